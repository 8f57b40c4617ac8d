"""The scan runner's own logic: allow-list discipline, verdicts and the summary table."""

# ruff: noqa: E501  (JUNIT below is a scanner report in its real layout, long lines included)

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scan import run


def test_every_allowlist_entry_has_a_reason_and_a_valid_pattern() -> None:
    entries = run.load_allowlist()
    assert entries, "the allow-list file is read"
    for entry in entries:
        assert entry["scanner"] in run.SCANNERS
        assert len(entry["reason"].split()) >= 10, entry["match"]
        re.compile(entry["match"])


def test_an_entry_without_a_reason_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowlist = tmp_path / "allowlist.toml"
    allowlist.write_text('[[allow]]\nscanner = "sslyze"\nmatch = "x"\nreason = " "\n')
    monkeypatch.setattr(run, "ALLOWLIST", allowlist)
    with pytest.raises(SystemExit):
        run.load_allowlist()


def test_allowlisted_findings_do_not_fail_the_scan_but_others_do() -> None:
    result = run.Result(
        "sslyze",
        findings=[
            run.Finding(
                "sslyze", "medium", "certificate_path_validation: failed for CN=localhost."
            ),
            run.Finding("sslyze", "medium", "ciphers: weak cipher suites enabled"),
        ],
    )
    run.apply_allowlist(result, run.load_allowlist())
    assert [f.title for f, _reason in result.allowed] == [
        "certificate_path_validation: failed for CN=localhost."
    ]
    assert result.failed


def test_low_findings_pass_and_a_scanner_error_fails() -> None:
    assert not run.Result("wapiti", findings=[run.Finding("wapiti", "low", "x")]).failed
    assert run.Result("wapiti", error="timed out").failed


def test_summary_table_has_one_row_per_scanner() -> None:
    table = run.summary_table(
        [run.Result("sslyze", checks="15 probes"), run.Result("wapiti", error="no report")]
    )
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["scanner", "checks", "run"]
    assert lines[2].startswith("sslyze") and " pass " in lines[2]
    assert "ERROR: no report" in lines[3]


def test_choose_ports_never_returns_a_busy_port() -> None:
    https, plain = run.choose_ports()
    assert https != plain
    assert run.port_free(https) and run.port_free(plain)


# A trimmed schemathesis JUnit report, in its real layout.
JUNIT = """<?xml version="1.0" ?>
<testsuites><testsuite name="schemathesis" tests="2">
<testcase name="GET /api/v1/clients"/>
<testcase name="PATCH /api/v1/services/{service_id}"><failure type="failure" message="ST202">1. Test Case ID: abc123

- ST202 Schema-valid request rejected

    Valid data should have been accepted

[422] Unprocessable Content:

    `{"detail": "Invalid input.", "errors": {"duration_minutes": ["Input should be a valid integer"], "price_cents": ["Input should be a valid integer"]}}`

2. Test Case ID: def456

- ST101 Server error

- ST103 Undocumented status code

[500] Internal Server Error:

    `{"detail": "Something went wrong on our side. Try again later."}`
</failure></testcase>
</testsuite></testsuites>
"""


def test_schemathesis_report_gives_one_finding_per_failed_check(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT)
    cases, findings = run.schemathesis_findings(junit)
    assert len(cases) == 2
    titles = [finding.title for finding in findings]
    assert len(titles) == 3
    assert titles[1].startswith("PATCH /api/v1/services/{service_id}: ST101 Server error -> 500")
    result = run.Result("schemathesis", findings=findings)
    run.apply_allowlist(result, run.load_allowlist())
    # The float-for-integer refusal is allowed (with its reason); the server error is not.
    assert [f.title.split(":")[1].split()[0] for f in result.findings] == ["ST101", "ST103"]
    assert len(result.allowed) == 1 and result.failed


def _wapiti_report(body: str) -> dict[str, object]:
    return {
        "vulnerabilities": {
            "Path Traversal": [
                {
                    "method": "POST",
                    "path": "/app/services/1/edit/",
                    "parameter": "price",
                    "level": 4,
                    "info": "PHP local inclusion leading to code execution via injection in the"
                    " parameter price",
                    "http_request": "POST /app/services/1/edit/ HTTP/1.1\n\n" + body,
                }
            ]
        }
    }


def test_a_wapiti_marker_echoed_from_the_request_is_information_not_a_finding() -> None:
    # Seen in a full scan: wapiti filled `name` with random text that held its marker, and the
    # re-rendered form (price was invalid) showed the name again.
    echoed = run.wapiti_findings(_wapiti_report("name=%C3%89%C2%B8x&price=php%3A%2F%2Ffilter"))
    assert [f.severity for f in echoed] == ["info"]
    assert "echo" in echoed[0].detail
    real = run.wapiti_findings(_wapiti_report("name=Walk&price=php%3A%2F%2Ffilter"))
    assert [f.severity for f in real] == ["critical"]
