"""Pages of pets and household details (docs/profiles.md): add, edit and remove a pet, edit the
household; the client's page, the Today card and the portal show them (includes/profile.html)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from custodia.clients import access, profiles
from custodia.clients.images import CONTENT_TYPE
from custodia.clients.profile_actions import (
    HOUSEHOLD_FIELDS,
    PET_FIELDS,
    do_create_pet,
    do_delete_pet,
    do_remove_pet_photo,
    do_set_pet_photo,
    do_update_household,
    do_update_pet,
)
from custodia.core.actor import Actor
from custodia.core.permissions import Permission
from custodia.tenancy.reads import Intent
from custodia.web.clients.forms import HouseholdForm, PetForm, PetPhotoForm
from custodia.web.decorators import member_required
from custodia.web.forms import form_action

FORM_METHODS = ["GET", "HEAD", "POST"]


@require_http_methods(FORM_METHODS)
@member_required(Permission.CLIENTS_RECORD_WRITE)
def pet_new(request: HttpRequest, actor: Actor, client_id: str) -> HttpResponse:
    """Add a pet to a client's profile."""
    # The form's page shows the client's name: a read, unless it is about to be changed.
    intent = Intent.CHANGE if request.method == "POST" else Intent.SHOW
    client = access.access_client_by_id(actor, client_id, intent=intent)
    form = PetForm(request.POST if request.method == "POST" else None)
    context = {"form": form, "client": client}
    if request.method != "POST":
        return render(request, "clients/pet_form.html", context)
    return form_action(
        request,
        form,
        lambda: do_create_pet(client, actor=actor, **form.cleaned_data),
        success="Pet added.",
        done=lambda _: redirect("client_detail", client_id=client.pk),
        page=lambda status: render(request, "clients/pet_form.html", context, status=status),
    )


@require_http_methods(FORM_METHODS)
@member_required(Permission.CLIENTS_RECORD_WRITE)
def pet_edit(request: HttpRequest, actor: Actor, pet_id: str) -> HttpResponse:
    """Change a pet's details."""
    if request.method != "POST":
        pet = profiles.access_pet_by_id(actor, pet_id, intent=Intent.SHOW)
        form = PetForm(initial={field: getattr(pet, field) for field in PET_FIELDS})
    else:
        pet = profiles.access_pet_by_id(actor, pet_id, intent=Intent.CHANGE)
        form = PetForm(request.POST)
    context = {"form": form, "pet": pet, "client": pet.client, "photo_form": PetPhotoForm()}
    if request.method != "POST":
        return render(request, "clients/pet_form.html", context)
    return form_action(
        request,
        form,
        lambda: do_update_pet(pet, actor=actor, **form.cleaned_data),
        success="Pet saved.",
        done=lambda _: redirect("client_detail", client_id=pet.client_id),
        page=lambda status: render(request, "clients/pet_form.html", context, status=status),
    )


@require_POST
@member_required(Permission.CLIENTS_RECORD_WRITE)
def pet_photo_upload(request: HttpRequest, actor: Actor, pet_id: str) -> HttpResponse:
    """Give a pet a photo (replacing any); a bad file shows the edit page with the error."""
    pet = profiles.access_pet_by_id(actor, pet_id, intent=Intent.CHANGE)
    photo_form = PetPhotoForm(request.POST, request.FILES)

    def page(status: int) -> HttpResponse:
        form = PetForm(initial={field: getattr(pet, field) for field in PET_FIELDS})
        context = {"form": form, "pet": pet, "client": pet.client, "photo_form": photo_form}
        return render(request, "clients/pet_form.html", context, status=status)

    return form_action(
        request,
        photo_form,
        lambda: do_set_pet_photo(pet, photo_form.cleaned_data["photo"].read(), actor=actor),
        success="Photo saved.",
        done=lambda _: redirect("pet_edit", pet_id=pet.pk),
        page=page,
    )


@require_POST
@member_required(Permission.CLIENTS_RECORD_WRITE)
def pet_photo_remove(request: HttpRequest, actor: Actor, pet_id: str) -> HttpResponse:
    """Remove a pet's photo."""
    pet = profiles.access_pet_by_id(actor, pet_id, intent=Intent.CHANGE)
    do_remove_pet_photo(pet, actor=actor)
    messages.success(request, "Photo removed.")
    return redirect("pet_edit", pet_id=pet.pk)


@require_safe
@member_required()
def pet_photo(request: HttpRequest, actor: Actor, pet_id: str, part: str) -> HttpResponse:
    """A pet's photo or its thumbnail, to whoever may see the pet; never cached."""
    pet = profiles.access_pet_photo(actor, pet_id, part=part)
    response = HttpResponse(getattr(pet, part), content_type=CONTENT_TYPE)
    response["Cache-Control"] = "private, no-store"
    response["Content-Disposition"] = "inline"
    return response


@require_http_methods(FORM_METHODS)
@member_required(Permission.CLIENTS_RECORD_WRITE)
def pet_delete(request: HttpRequest, actor: Actor, pet_id: str) -> HttpResponse:
    """Ask, then remove a pet."""
    intent = Intent.CHANGE if request.method == "POST" else Intent.SHOW
    pet = profiles.access_pet_by_id(actor, pet_id, intent=intent)
    if request.method == "POST":
        client_id = pet.client_id
        do_delete_pet(pet, actor=actor)
        messages.success(request, "Pet removed.")
        return redirect("client_detail", client_id=client_id)
    return render(request, "clients/pet_delete.html", {"pet": pet})


@require_http_methods(FORM_METHODS)
@member_required(Permission.CLIENTS_RECORD_WRITE)
def household_edit(request: HttpRequest, actor: Actor, client_id: str) -> HttpResponse:
    """Change a client's household details; the editor shows the sealed ones, so a manager
    confirms it's them first (as for door codes)."""
    if request.method != "POST":
        client = access.access_client_by_id(actor, client_id, intent=Intent.SHOW)
        home = profiles.profile_for(actor, client, insist=True).household
        form = HouseholdForm(initial={field: getattr(home, field) for field in HOUSEHOLD_FIELDS})
        return render(request, "clients/household_form.html", {"form": form, "client": client})
    client = access.access_client_by_id(actor, client_id, intent=Intent.CHANGE)
    form = HouseholdForm(request.POST)
    context = {"form": form, "client": client}
    return form_action(
        request,
        form,
        lambda: do_update_household(client, actor=actor, **form.cleaned_data),
        success="Household details saved.",
        done=lambda _: redirect("client_detail", client_id=client.pk),
        page=lambda status: render(request, "clients/household_form.html", context, status=status),
    )
