"""Members, object grants, API tokens and the audit trail in the admin, under the same scopes as the command line."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType

from services.models import (
    OBJECT_PERMISSIONS,
    Project,
    ProjectUserObjectPermission,
    Service,
    ServiceUserObjectPermission,
)

from . import actions, scopes
from .admin_scoping import ScopedAdmin
from .models import APIToken, AuditEntry, Membership


class MembershipAddForm(forms.ModelForm):
    username = forms.CharField(max_length=150)
    password = forms.CharField(widget=forms.PasswordInput, required=False,
                               help_text="Leave empty for a user that acts only through API tokens.")

    class Meta:
        model = Membership
        fields = ["role"]


class MembershipChangeForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["role"]


@admin.register(Membership)
class MembershipAdmin(ScopedAdmin):
    """Users and their roles. Adding one creates the user; changing the role is audited."""

    list_display = ["user", "role"]
    list_select_related = ["user"]
    read_scope = scopes.MEMBERS_MANAGE
    change_scope = scopes.MEMBERS_MANAGE
    add_scope = scopes.MEMBERS_MANAGE

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = MembershipChangeForm if obj is not None else MembershipAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ["role"] if obj is not None else ["username", "password", "role"]

    def save_model(self, request, obj, form, change):
        principal = self.principal(request)
        if change:
            actions.set_role(principal, get_user_model().objects.get(pk=obj.user_id), form.cleaned_data["role"])
            return
        user = actions.create_user(principal, username=form.cleaned_data["username"], role=form.cleaned_data["role"],
                                   password=form.cleaned_data["password"] or None)
        obj.pk = user.membership.pk
        obj.user = user
        obj._state.adding = False


SCOPE_CHOICES = [(scope, scope) for _, scope in OBJECT_PERMISSIONS]


class GrantForm(forms.ModelForm):
    scope = forms.ChoiceField(choices=SCOPE_CHOICES)

    class Meta:
        fields = ["user", "content_object"]


class GrantAdmin(ScopedAdmin):
    """Object grants: adding one calls the grant action, revoking calls the revoke action; both are audited."""

    list_display = ["user", "content_object", "scope"]
    list_select_related = ["user", "permission", "content_object"]
    list_filter = ["permission__codename"]
    read_scope = scopes.MEMBERS_MANAGE
    add_scope = scopes.MEMBERS_MANAGE
    actions = ["revoke_selected"]
    target_model = None

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = type("GrantForm", (GrantForm,), {"Meta": type("Meta", (), {
            "model": self.model, "fields": ["user", "content_object"]})})
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ["user", "content_object", "scope"] if obj is None else ["user", "content_object", "permission"]

    def get_readonly_fields(self, request, obj=None):
        return ["user", "content_object", "permission"] if obj is not None else []

    @admin.display(description="scope")
    def scope(self, row):
        return dict(OBJECT_PERMISSIONS).get(row.permission.codename, row.permission.codename)

    def save_model(self, request, obj, form, change):
        result = actions.grant(self.principal(request), obj.user, obj.content_object, [form.cleaned_data["scope"]])
        permission = Permission.objects.get(
            content_type=ContentType.objects.get_for_model(self.target_model),
            codename="scope_" + form.cleaned_data["scope"].replace(":", "_"),
        )
        saved = self.model.objects.get(user=obj.user, content_object=obj.content_object, permission=permission)
        obj.pk = saved.pk
        obj.permission = permission
        obj._state.adding = False
        if result.get("note"):
            self.message_user(request, result["note"], messages.WARNING)

    @admin.action(description="Revoke the selected grants")
    def revoke_selected(self, request, queryset):
        def revoke_grant(principal, row):
            actions.revoke(principal, row.user, row.content_object, [self.scope(row)])

        self.run_per_object(request, queryset, revoke_grant, "Grants revoked")


@admin.register(ProjectUserObjectPermission)
class ProjectGrantAdmin(GrantAdmin):
    target_model = Project


@admin.register(ServiceUserObjectPermission)
class ServiceGrantAdmin(GrantAdmin):
    target_model = Service


class TokenAddForm(forms.ModelForm):
    token_scopes = forms.MultipleChoiceField(choices=[(s, s) for s in scopes.ALL_SCOPES],
                                             widget=forms.CheckboxSelectMultiple, label="Scopes")

    class Meta:
        model = APIToken
        fields = ["user", "name", "expires_at"]


@admin.register(APIToken)
class APITokenAdmin(ScopedAdmin):
    """API tokens: the value is shown once after adding; revoking is an action. Tokens are never edited."""

    list_display = ["name", "user", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_select_related = ["user"]
    readonly_fields = ["user", "name", "prefix", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at"]
    actions = ["revoke_selected"]

    def scoped_queryset(self, request, queryset):
        if self.principal(request).has_scope(scopes.TOKENS_MANAGE):
            return queryset
        return queryset.filter(user=request.user)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        if not (request.user.is_active and request.user.is_staff):
            return False
        return obj is None or obj.user_id == request.user.pk or self.holds(request, scopes.TOKENS_MANAGE)

    def has_add_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_change_permission(self, request, obj=None):
        return False

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = TokenAddForm
        form = super().get_form(request, obj, **kwargs)
        if obj is None:
            # Only users the signed-in user may make tokens for are offered:
            # itself, or everyone (but guardian's anonymous user) with tokens:manage.
            users = get_user_model().objects.exclude(
                username=getattr(settings, "ANONYMOUS_USER_NAME", "AnonymousUser")
            )
            if not self.principal(request).has_scope(scopes.TOKENS_MANAGE):
                users = users.filter(pk=request.user.pk)
            form.base_fields["user"].queryset = users
        return form

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "name", "token_scopes", "expires_at"]
        return self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def save_model(self, request, obj, form, change):
        token, raw = actions.create_token(self.principal(request), form.cleaned_data["user"],
                                          name=form.cleaned_data["name"],
                                          requested=form.cleaned_data["token_scopes"],
                                          expires_at=form.cleaned_data.get("expires_at"))
        obj.pk = token.pk
        obj._state.adding = False
        self.message_user(request, f"Token {token.name}: {raw} — copy it now, it is not shown again.",
                          messages.WARNING)

    @admin.action(description="Revoke the selected tokens")
    def revoke_selected(self, request, queryset):
        self.run_per_object(request, queryset.filter(revoked_at__isnull=True), actions.revoke_token, "Tokens revoked")


@admin.register(AuditEntry)
class AuditEntryAdmin(ScopedAdmin):
    """The audit trail, read-only: entries cannot be added, changed or deleted here."""

    list_display = ["created_at", "actor_label", "action", "target_label", "scope", "outcome"]
    list_filter = ["outcome", "action"]
    search_fields = ["actor_label", "target_label", "action"]
    read_scope = scopes.MEMBERS_MANAGE

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in AuditEntry._meta.fields]


# Django's own user and group pages check Django model permissions, not
# roles and scopes: a user with is_superuser or stray model permissions
# could change any user's password there. Members are managed above.
for model in (get_user_model(), Group):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
