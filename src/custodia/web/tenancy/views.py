"""Pages for the people of a business: staff, invitations, the business switcher."""

from __future__ import annotations

import re
from typing import Any

from allauth.account.utils import perform_login
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from custodia.accounts.access import email_has_account
from custodia.accounts.sessions import rotate_session
from custodia.core.actor import Actor, activate
from custodia.core.dbcontext import clear, set_db_context
from custodia.core.permissions import Permission, Role
from custodia.lifecycle import retention
from custodia.lifecycle.backups import unreadable_everywhere_days
from custodia.tenancy import access
from custodia.tenancy.actions import (
    INVALID_INVITATION,
    do_accept_invitation,
    do_change_role,
    do_deactivate_member,
    do_delete_business,
    do_grant_cards,
    do_invite_member,
    do_revoke_invitation,
    do_update_business_profile,
    do_update_security_policy,
    invitation_proof,
    open_invitation,
)
from custodia.tenancy.actors import act_for, forget_business
from custodia.tenancy.closing import do_close_business, do_reopen_business
from custodia.tenancy.models import Invitation
from custodia.web.decorators import member_required
from custodia.web.forms import add_action_errors, form_action
from custodia.web.tenancy.forms import (
    AcceptInvitationForm,
    BusinessProfileForm,
    CloseBusinessForm,
    DeleteBusinessForm,
    InviteForm,
    RoleForm,
    SecurityPolicyForm,
    SwitchBusinessForm,
)

# The opened link's prefix and proof (a digest, not the secret), kept until it is accepted.
INVITATION_SESSION_KEY = "custodia.invitation"
# What issued link parts look like (hex prefix, URL-safe secret); anything else is not looked up.
LINK_PART = re.compile(r"[A-Za-z0-9_-]{1,128}")


# --- Staff ------------------------------------------------------------------------------------


def _staff_page(
    request: HttpRequest,
    actor: Actor,
    *,
    invite_form: InviteForm | None = None,
    errors: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    can_invite = actor.can(Permission.STAFF_MEMBER_INVITE)
    context: dict[str, Any] = {
        "members": access.list_members(actor),
        "can_invite": can_invite,
        "can_change_roles": actor.can(Permission.STAFF_ROLE_WRITE),
        "role_choices": RoleForm.base_fields["role"].choices,  # type: ignore[attr-defined]
        "errors": errors or [],
    }
    if can_invite:
        invitations = access.pending_invitations(actor)
        context["invitations"] = invitations
        context["invite_form"] = invite_form or InviteForm(allow_owner=actor.role == Role.OWNER)
    return render(request, "tenancy/staff.html", context, status=status)


@require_safe
@member_required(Permission.STAFF_MEMBER_READ)
def staff_list(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The people working in the business, pending invitations, and the invite form."""
    return _staff_page(request, actor)


@require_POST
@member_required(Permission.STAFF_MEMBER_INVITE)
def staff_invite(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Send an invitation by email."""
    form = InviteForm(request.POST, allow_owner=actor.role == Role.OWNER)
    return form_action(
        request,
        form,
        lambda: do_invite_member(
            actor=actor, email=form.cleaned_data["email"], role=Role(form.cleaned_data["role"])
        ),
        success="Invitation sent.",
        done=lambda _: redirect("staff_list"),
        page=lambda status: _staff_page(request, actor, invite_form=form, status=status),
    )


@require_POST
@member_required(Permission.STAFF_MEMBER_INVITE)
def invitation_revoke(request: HttpRequest, actor: Actor, invitation_id: str) -> HttpResponse:
    """The invitation link stops working."""
    invitation = access.access_invitation_by_id(actor, invitation_id)
    try:
        do_revoke_invitation(invitation, actor=actor)
    except ValidationError as exc:
        return _staff_page(request, actor, errors=exc.messages, status=400)
    messages.success(request, "Invitation revoked.")
    return redirect("staff_list")


@require_POST
@member_required(Permission.STAFF_ROLE_WRITE)
def member_role(request: HttpRequest, actor: Actor, membership_id: str) -> HttpResponse:
    """An owner changes a member's role."""
    member = access.access_member_by_id(actor, membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return _staff_page(request, actor, errors=["Choose a valid role."], status=400)
    try:
        do_change_role(member, Role(form.cleaned_data["role"]), actor=actor)
    except ValidationError as exc:
        return _staff_page(request, actor, errors=exc.messages, status=400)
    messages.success(request, "Role changed.")
    return redirect("staff_list")


@require_POST
@member_required(Permission.STAFF_ROLE_WRITE)
def member_cards(request: HttpRequest, actor: Actor, membership_id: str) -> HttpResponse:
    """An owner grants a manager card payments, or takes the grant back."""
    member = access.access_member_by_id(actor, membership_id)
    granted = request.POST.get("granted") == "on"
    try:
        do_grant_cards(member, granted, actor=actor)
    except ValidationError as exc:
        return _staff_page(request, actor, errors=exc.messages, status=400)
    messages.success(request, "Card payments granted." if granted else "Card payments withdrawn.")
    return redirect("staff_list")


@require_POST
@member_required(Permission.STAFF_MEMBER_INVITE)
def member_deactivate(request: HttpRequest, actor: Actor, membership_id: str) -> HttpResponse:
    """The member loses access to this business."""
    member = access.access_member_by_id(actor, membership_id)
    try:
        do_deactivate_member(member, actor=actor)
    except ValidationError as exc:
        return _staff_page(request, actor, errors=exc.messages, status=400)
    messages.success(request, "Member deactivated.")
    return redirect("staff_list")


# --- Business settings ------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
@member_required(Permission.BUSINESS_SETTINGS_WRITE)
def business_settings(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The owner's business profile: name, time zone, currency, hours, access window, reminders."""
    business = actor.business
    if request.method != "POST":
        form = BusinessProfileForm(initial=BusinessProfileForm.initial_for(business))
        return render(request, "tenancy/business_settings.html", {"form": form})
    form = BusinessProfileForm(request.POST)
    return form_action(
        request,
        form,
        lambda: do_update_business_profile(business, actor=actor, **form.action_fields()),
        success="Business settings saved.",
        done=lambda _: redirect("business_settings"),
        page=lambda status: render(
            request, "tenancy/business_settings.html", {"form": form}, status=status
        ),
    )


# --- Security policy --------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
@member_required(Permission.BUSINESS_SECURITY_WRITE)
def business_security(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The owner's session idle limit and two-factor requirements for the business."""
    business = actor.business
    if request.method != "POST":
        form = SecurityPolicyForm(
            initial={
                "session_idle_minutes": business.session_idle_minutes,
                "mfa_required_owners": business.mfa_required_owners,
                "mfa_required_managers": business.mfa_required_managers,
                "mfa_required_staff": business.mfa_required_staff,
            }
        )
        return render(request, "tenancy/business_security.html", {"form": form})
    form = SecurityPolicyForm(request.POST)
    return form_action(
        request,
        form,
        lambda: do_update_security_policy(business, actor=actor, **form.cleaned_data),
        success="Security settings saved.",
        done=lambda _: redirect("business_security"),
        page=lambda status: render(
            request, "tenancy/business_security.html", {"form": form}, status=status
        ),
    )


@require_safe
@member_required(Permission.BUSINESS_SECURITY_WRITE)
def business_retention(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The retention policy the owner's business is kept under (lifecycle/retention.py)."""
    return render(
        request, "tenancy/business_retention.html", {"retention_policy": retention.policy()}
    )


def _closing_page(
    request: HttpRequest,
    *,
    close_form: CloseBusinessForm | None = None,
    delete_form: DeleteBusinessForm | None = None,
    errors: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "close_form": close_form or CloseBusinessForm(prefix="close"),
        "delete_form": delete_form or DeleteBusinessForm(),
        "grace_days": settings.CLOSED_BUSINESS_GRACE_DAYS,
        "keystore_backup_retention_days": settings.KEYSTORE_BACKUP_RETENTION_DAYS,
        "unreadable_after_days": unreadable_everywhere_days(),
        "errors": errors or [],
    }
    return render(request, "tenancy/business_delete.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
@member_required(Permission.BUSINESS_DELETE)
def business_delete(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The owner's page to close the business (reversible for a while), reopen it, or delete it
    now: every record, and its encryption keys."""
    business = actor.business
    if request.method != "POST":
        return _closing_page(request)
    form = DeleteBusinessForm(request.POST)
    return form_action(
        request,
        form,
        lambda: do_delete_business(
            business, actor=actor, confirm_slug=form.cleaned_data["confirm"]
        ),
        success=f"{business.name} was deleted and its encryption keys destroyed.",
        done=lambda _: _business_gone(request),
        page=lambda status: _closing_page(request, delete_form=form, status=status),
    )


@require_POST
@member_required(Permission.BUSINESS_CLOSE)
def business_close(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The owner closes the business: read-only now, deleted after the grace period."""
    business = actor.business
    form = CloseBusinessForm(request.POST, prefix="close")
    return form_action(
        request,
        form,
        lambda: do_close_business(business, actor=actor, confirm_name=form.cleaned_data["confirm"]),
        success=f"{business.name} is closed.",
        done=lambda _: redirect("business_delete"),
        page=lambda status: _closing_page(request, close_form=form, status=status),
    )


@require_POST
@member_required(Permission.BUSINESS_CLOSE)
def business_reopen(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The owner reopens a closed business before its purge."""
    try:
        do_reopen_business(actor.business, actor=actor)
    except ValidationError as exc:
        return _closing_page(request, errors=exc.messages, status=400)
    messages.success(request, f"{actor.business.name} is open again.")
    return redirect("business_delete")


def _business_gone(request: HttpRequest) -> HttpResponse:
    # Not silently another business: the person chooses (tenancy/actors.py).
    forget_business(request.session)
    return redirect("home")


# --- Business switcher ------------------------------------------------------------------------


@require_safe
def choose_business(request: HttpRequest) -> HttpResponse:
    """The businesses the person may act for, to pick one (after theirs went away)."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.path)
    memberships = list(access.memberships_of(request.user))  # type: ignore[arg-type]
    if not memberships:
        return redirect("dashboard")
    return render(request, "tenancy/choose_business.html", {"memberships": memberships})


@require_POST
def switch_business(request: HttpRequest) -> HttpResponse:
    """Make another of the user's businesses the active one, under a new session id."""
    if not request.user.is_authenticated:
        return redirect("account_login")
    form = SwitchBusinessForm(request.POST)
    if not form.is_valid():
        raise Http404("No such business.")
    membership = (
        access.memberships_of(request.user)  # type: ignore[arg-type]
        .filter(tenant_id=form.cleaned_data["business"])
        .first()
    )
    if membership is None:
        raise Http404("No such business.")
    act_for(request.session, membership.tenant_id)
    # Acting for another business is a privilege change: the old session id stops working.
    rotate_session(request)
    return redirect("dashboard")


# --- Invitations ------------------------------------------------------------------------------


def _restore_context(request: HttpRequest) -> None:
    """Opening an invitation narrows the database to it; give the page the user's view back."""
    actor = getattr(request, "actor", None)
    if actor is not None:
        # Still the current actor (TenantMiddleware's acting_as): its database context again.
        activate(actor)
    elif request.user.is_authenticated:
        set_db_context(user_id=request.user.pk)
    else:
        clear()


def _held_link(request: HttpRequest, prefix: str) -> tuple[str, str] | None:
    held = request.session.get(INVITATION_SESSION_KEY)
    if not isinstance(held, dict) or held.get("prefix") != prefix:
        return None
    proof = held.get("proof")
    return (prefix, proof) if isinstance(proof, str) else None


def _forget_link(request: HttpRequest) -> None:
    request.session.pop(INVITATION_SESSION_KEY, None)


def _invalid_invitation(request: HttpRequest) -> HttpResponse:
    _forget_link(request)
    return render(request, "tenancy/invitation_invalid.html", status=400)


def _live_invitation(request: HttpRequest, prefix: str, proof: str) -> Invitation | None:
    if not LINK_PART.fullmatch(prefix):
        return None
    try:
        return open_invitation(prefix, proof)
    except ValidationError:
        return None
    finally:
        _restore_context(request)


@require_safe
def invitation_open(request: HttpRequest, prefix: str, secret: str) -> HttpResponse:
    """The emailed link: keep its proof (never the secret) in the session, move to an address
    without it."""
    proof = invitation_proof(secret)
    if not LINK_PART.fullmatch(secret) or _live_invitation(request, prefix, proof) is None:
        _forget_link(request)
    else:
        request.session[INVITATION_SESSION_KEY] = {"prefix": prefix, "proof": proof}
    # Either way the next page has no secret in its address (history, Referer, logs).
    return redirect("invitation_accept", prefix=prefix)


def _accept_page(
    request: HttpRequest,
    invitation: Invitation,
    *,
    form: AcceptInvitationForm | None = None,
    errors: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    has_account = not user.is_authenticated and email_has_account(invitation.email)
    context = {
        "invitation": invitation,
        "business_name": invitation.tenant.name,
        "role_label": Role(invitation.role).label,
        "has_account": has_account,
        "wrong_user": user.is_authenticated and user.email.lower() != invitation.email.lower(),  # type: ignore[union-attr]
        "form": form
        or (
            None
            if user.is_authenticated or has_account
            else AcceptInvitationForm(email=invitation.email)
        ),
        "errors": errors or [],
        "login_url": f"{reverse('account_login')}?next="
        + reverse("invitation_accept", kwargs={"prefix": invitation.prefix}),
    }
    return render(request, "tenancy/invitation_accept.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
def invitation_accept(request: HttpRequest, prefix: str) -> HttpResponse:
    """Join the business: with the logged-in account, or with a new one made here."""
    held = _held_link(request, prefix)
    if held is None:
        return _invalid_invitation(request)
    invitation = _live_invitation(request, *held)
    if invitation is None:
        return _invalid_invitation(request)
    if request.method != "POST":
        return _accept_page(request, invitation)

    form = None
    try:
        if request.user.is_authenticated:
            actor = do_accept_invitation(*held, user=request.user)  # type: ignore[arg-type]
        else:
            form = AcceptInvitationForm(request.POST, email=invitation.email)
            if not form.is_valid():
                return _accept_page(request, invitation, form=form, status=400)
            actor = do_accept_invitation(
                *held,
                user=None,
                full_name=form.cleaned_data["full_name"],
                password=form.cleaned_data["password"],
            )
    except ValidationError as exc:
        _restore_context(request)
        if INVALID_INVITATION in exc.messages:
            return _invalid_invitation(request)
        if form is not None:
            add_action_errors(form, exc)
        return _accept_page(
            request, invitation, form=form, errors=None if form else exc.messages, status=400
        )
    _forget_link(request)
    if request.user.is_authenticated:
        act_for(request.session, actor.tenant_id)
        # A new membership is a privilege change: the old session id stops working.
        rotate_session(request)
        messages.success(request, f"Welcome to {actor.business.name}.")
        return redirect("dashboard")
    response = perform_login(request, actor.user, redirect_url=reverse("dashboard"))
    # Login made a new session id; it now acts for the business that invited them.
    act_for(request.session, actor.tenant_id)
    messages.success(request, f"Welcome to {actor.business.name}.")
    return response
