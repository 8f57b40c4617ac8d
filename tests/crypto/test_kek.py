"""Key-encryption keys: the file, env and aws-kms providers, and the start-up check.

A wrong, missing, too-open or unreachable KEK stops start-up with a message that says what is
wrong and where, never a key; a missing keyring is never replaced by a new key while the
keystore holds keys wrapped by the old one. The aws-kms provider runs against a real local KMS
(moto's server, with IAM enforced, so that a denial is a real one).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from custodia.crypto import keyring, keystore
from custodia.crypto.checks import verify_kek
from custodia.crypto.errors import KekError
from custodia.crypto.fields import open_text, seal_text
from custodia.crypto.kek import read_keyring_file, write_keyring_entries


def keyring_path(settings: Any) -> Path:
    return Path(settings.KEK_KEYRING_FILE)


def key_texts(settings: Any) -> list[str]:
    """Every KEK of the keyring file in base64 (and hex), to look for in messages."""
    keys = read_keyring_file(keyring_path(settings))
    return [base64.b64encode(key).decode() for key in keys] + [key.hex() for key in keys]


def assert_no_key(message: str, texts: list[str]) -> None:
    for text in texts:
        assert text not in message
        assert text[:16] not in message


def round_trip(business: uuid.UUID) -> None:
    blob = seal_text(business, "clients_client", "notes", "row-1", "a note")
    assert open_text(business, "clients_client", "notes", "row-1", blob) == "a note"


# --- The file provider -------------------------------------------------------------------------


def test_the_keyring_is_made_private_on_first_use(sandbox: Path, settings: Any) -> None:
    path = keyring_path(settings)
    assert not path.exists()
    assert "keystore is empty" in verify_kek()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert len(document["keys"]) == 1
    business = uuid.uuid4()
    keyring.create_keys(business)
    round_trip(business)
    key_file = json.loads(keystore.path_for(business).read_text())
    assert stat.S_IMODE(keystore.path_for(business).stat().st_mode) == 0o600
    # The keystore holds wrapped keys only, under the keyring's key.
    assert key_file["index"]["kek"] == document["keys"][0]["id"]
    assert document["keys"][0]["key"] not in keystore.path_for(business).read_text()
    keyring.reset()
    round_trip(business)  # a new process reads the same keys
    assert "1 businesses" in verify_kek()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_keyring_readable_by_others_is_refused(sandbox: Path, settings: Any, mode: int) -> None:
    keyring.create_keys(uuid.uuid4())
    path = keyring_path(settings)
    texts = key_texts(settings)
    path.chmod(mode)
    keyring.reset()
    with pytest.raises(KekError) as error:
        verify_kek()
    message = str(error.value)
    assert "chmod 600" in message and str(path) in message
    assert_no_key(message, texts)


def test_a_missing_keyring_with_keys_in_the_keystore_is_an_error_not_a_new_key(
    sandbox: Path, settings: Any
) -> None:
    business = uuid.uuid4()
    keyring.create_keys(business)
    path = keyring_path(settings)
    path.unlink()
    keyring.reset()
    for attempt in (verify_kek, keyring.provider, lambda: keyring.keys_for(business)):
        with pytest.raises(KekError) as error:
            attempt()
        assert str(path) in str(error.value) and "missing" in str(error.value)
        assert not path.exists()  # no new key was made to replace the lost one


def test_a_different_keyring_is_not_the_key_that_wrapped_the_keystore(
    sandbox: Path, settings: Any
) -> None:
    business = uuid.uuid4()
    keyring.create_keys(business)
    old = key_texts(settings)
    write_keyring_entries(keyring_path(settings), [{"key": os.urandom(32)}])
    new = key_texts(settings)
    assert stat.S_IMODE(keyring_path(settings).stat().st_mode) == 0o600
    keyring.reset()
    with pytest.raises(KekError) as error:
        verify_kek()
    message = str(error.value)
    assert "wrapped the keystore" in message
    assert_no_key(message, old + new)
    with pytest.raises(KekError):
        round_trip(business)


def test_an_altered_keystore_file_does_not_unwrap(sandbox: Path, settings: Any) -> None:
    business = uuid.uuid4()
    keyring.create_keys(business)
    path = keystore.path_for(business)
    document = json.loads(path.read_text())
    wrapped = bytearray(base64.b64decode(document["keys"][0]["wrapped"]))
    wrapped[-1] ^= 1
    document["keys"][0]["wrapped"] = base64.b64encode(bytes(wrapped)).decode()
    path.write_text(json.dumps(document))
    keyring.reset()
    with pytest.raises(KekError) as error:
        keyring.keys_for(business)
    assert "altered" in str(error.value)
    assert document["keys"][0]["wrapped"] not in str(error.value)


def test_the_check_command_fails_with_crypto_e001_on_a_wrong_kek(
    sandbox: Path, settings: Any
) -> None:
    keyring.create_keys(uuid.uuid4())
    call_command("check", verbosity=0)  # the right key passes
    write_keyring_entries(keyring_path(settings), [{"key": os.urandom(32)}])
    texts = key_texts(settings)
    keyring.reset()
    with pytest.raises(SystemCheckError) as error:
        call_command("check", verbosity=0)
    assert "crypto.E001" in str(error.value)
    assert_no_key(str(error.value), texts)


# --- The env provider --------------------------------------------------------------------------


def test_the_env_provider_wraps_with_the_given_key(sandbox: Path, settings: Any) -> None:
    settings.KEK_PROVIDER = "env"
    settings.KEK_VALUE = base64.b64encode(os.urandom(32)).decode()
    business = uuid.uuid4()
    keyring.create_keys(business)
    round_trip(business)
    assert "(env)" in verify_kek()
    assert not keyring_path(settings).exists()  # Custodia never writes an env key anywhere
    settings.KEK_VALUE = base64.b64encode(os.urandom(32)).decode()
    keyring.reset()
    with pytest.raises(KekError) as error:
        verify_kek()
    assert settings.KEK_VALUE not in str(error.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("not*base64*at*all", "not valid base64"),
        (base64.b64encode(b"k" * 16).decode(), "16 bytes"),
        (base64.b64encode(b"k" * 33).decode(), "33 bytes"),
        (base64.b64encode(b"k" * 31).decode(), "31 bytes"),
        ("c2VjcmV0LWtleS1tYXRlcmlhbA", "not valid base64"),  # unpadded
    ],
)
def test_a_malformed_env_key_names_the_variable_not_the_value(
    sandbox: Path, settings: Any, value: str, expected: str
) -> None:
    settings.KEK_PROVIDER = "env"
    settings.KEK_VALUE = value
    with pytest.raises(KekError) as error:
        verify_kek()
    message = str(error.value)
    assert "CUSTODIA_KEK" in message and expected in message
    assert value not in message and value[:12] not in message


def test_an_absent_env_key_is_named(sandbox: Path, settings: Any) -> None:
    settings.KEK_PROVIDER = "env"
    with pytest.raises(KekError, match="CUSTODIA_KEK"):
        verify_kek()


# --- The aws-kms provider, against a local KMS -------------------------------------------------

ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
ALLOW_KMS = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}],
}
DENY_DECRYPT = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"}],
}
# The unauthenticated calls moto allows before it enforces IAM: those that make the two users.
SETUP_CALLS = 6


@dataclass
class LocalKms:
    url: str
    admin: dict[str, str]  # credentials allowed everything
    app: dict[str, str]  # Custodia's credentials: kms:* unless a test denies some

    def client(self, service: str, credentials: dict[str, str]) -> Any:
        import boto3

        return boto3.client(
            service,
            region_name="us-east-1",
            endpoint_url=self.url,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"moto_server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"moto_server did not listen on port {port} within {seconds} s")


@pytest.fixture(scope="session")
def local_kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKms]:
    """A moto server with IAM enforced; fails (never skips) if it cannot start."""
    import boto3

    binary = Path(sys.executable).parent / "moto_server"
    assert binary.exists(), f"{binary} is missing: moto[server] must be installed"
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_CALLS)}
    with open(log, "wb") as output:
        process = subprocess.Popen(  # noqa: S603  (fixed arguments)
            [str(binary), "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_for_port(port, process)
        url = f"http://127.0.0.1:{port}"
        iam = boto3.client(
            "iam",
            region_name="us-east-1",
            endpoint_url=url,
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        users = {}
        for name, policy in (("admin", ALLOW_ALL), ("custodia", ALLOW_KMS)):
            iam.create_user(UserName=name)
            iam.put_user_policy(UserName=name, PolicyName="base", PolicyDocument=json.dumps(policy))
            users[name] = iam.create_access_key(UserName=name)["AccessKey"]
        yield LocalKms(url, users["admin"], users["custodia"])
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def kms(sandbox: Path, settings: Any, local_kms: LocalKms, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Custodia configured for a new KMS key of the local server, with its own credentials."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", local_kms.app["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", local_kms.app["SecretAccessKey"])
    monkeypatch.setenv("AWS_CONFIG_FILE", str(sandbox / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(sandbox / "no-aws-credentials"))
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    admin = local_kms.client("kms", local_kms.admin)
    key_id = admin.create_key(Description="custodia test KEK")["KeyMetadata"]["KeyId"]
    settings.KEK_PROVIDER = "aws-kms"
    settings.KMS_KEY_ID = key_id
    settings.KMS_ENDPOINT_URL = local_kms.url
    settings.KMS_REGION = "us-east-1"
    keyring.reset()
    yield local_kms
    iam = local_kms.client("iam", local_kms.admin)
    if "deny-decrypt" in iam.list_user_policies(UserName="custodia")["PolicyNames"]:
        iam.delete_user_policy(UserName="custodia", PolicyName="deny-decrypt")


def deny_decrypt(local_kms: LocalKms) -> None:
    local_kms.client("iam", local_kms.admin).put_user_policy(
        UserName="custodia", PolicyName="deny-decrypt", PolicyDocument=json.dumps(DENY_DECRYPT)
    )


@pytest.mark.django_db
def test_kms_wraps_the_keys_of_a_new_business_and_its_client_reads_back(
    kms: LocalKms, settings: Any
) -> None:
    from custodia.clients.actions import do_create_client
    from custodia.clients.models import Client
    from custodia.tenancy.actions import do_create_business
    from tests.acting import act
    from tests.factories import UserFactory, authenticated

    owner = authenticated(do_create_business(name="Kms Co", owner=UserFactory()))
    act(owner)
    client = do_create_client(actor=owner, name="Kim", email="kim@kms.test", door_code="2468")
    key_file = json.loads(keystore.path_for(owner.tenant_id).read_text())
    assert key_file["index"]["kek"] == settings.KMS_KEY_ID
    assert {key["kek"] for key in key_file["keys"]} == {settings.KMS_KEY_ID}
    keyring.reset()  # a new process: the keys are unwrapped by KMS again
    act(owner)
    again = Client.objects.get(tenant_id=owner.tenant_id, pk=client.pk)
    assert again.email == "kim@kms.test"
    assert again.home_access.door_code == "2468"
    assert "(aws-kms)" in verify_kek()


def test_a_denied_kms_decrypt_is_a_kek_error_without_key_material(kms: LocalKms) -> None:
    business = uuid.uuid4()
    keyring.create_keys(business)
    keys = keyring.keys_for(business)
    material = [base64.b64encode(keys.index_key).decode(), keys.index_key.hex()]
    wrapped = json.loads(keystore.path_for(business).read_text())["index"]["wrapped"]
    deny_decrypt(kms)
    keyring.reset()
    with pytest.raises(KekError) as error:
        keyring.keys_for(business)
    message = str(error.value)
    assert "refused to unwrap" in message
    assert "AccessDenied" in message or "403" in message
    assert_no_key(message, [*material, wrapped])
    with pytest.raises(SystemCheckError) as check:
        call_command("check", verbosity=0)
    assert "crypto.E001" in str(check.value)


def test_an_unreachable_kms_is_a_kek_error(kms: LocalKms, settings: Any) -> None:
    """Unwrapping while KMS cannot be reached says so, as a KekError the start-up check turns
    into crypto.E001, rather than a raw botocore exception."""
    business = uuid.uuid4()
    keyring.create_keys(business)
    settings.KMS_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    keyring.reset()
    with pytest.raises(KekError, match="unreachable"):
        keyring.keys_for(business)


def test_kms_binds_each_wrapped_key_to_its_business_by_encryption_context(kms: LocalKms) -> None:
    business, other = uuid.uuid4(), uuid.uuid4()
    keyring.create_keys(business)
    index_key = keyring.keys_for(business).index_key
    wrapped = base64.b64decode(
        json.loads(keystore.path_for(business).read_text())["index"]["wrapped"]
    )
    client = kms.client("kms", kms.app)
    right = {"custodia": keystore.index_key_context(business).decode()}
    assert client.decrypt(CiphertextBlob=wrapped, EncryptionContext=right)["Plaintext"] == index_key
    # The same ciphertext, asked for without the context or as another business's key: KMS
    # refuses, so a wrapped key copied elsewhere is useless even to someone who may call KMS.
    for context in ({}, {"custodia": keystore.index_key_context(other).decode()}):
        with pytest.raises(client.exceptions.InvalidCiphertextException):
            client.decrypt(CiphertextBlob=wrapped, EncryptionContext=context)
