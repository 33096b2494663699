from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

# Imported for its side effect: it registers the API token scheme with
# drf-spectacular. Here rather than in an AppConfig, so commands, which never
# build the schema, start without drf-spectacular.
import accounts.schema  # noqa: F401
from accounts.api import AuditEntryViewSet
from deployments.api import DeploymentViewSet
from services.api import (
    EnvironmentVariableViewSet,
    EnvironmentViewSet,
    ProjectViewSet,
    ServerViewSet,
    ServiceViewSet,
)

router = DefaultRouter()
router.register("projects", ProjectViewSet, basename="project")
router.register("environments", EnvironmentViewSet, basename="environment")
router.register("servers", ServerViewSet, basename="server")
router.register("services", ServiceViewSet, basename="service")
router.register("env-vars", EnvironmentVariableViewSet, basename="env-var")
router.register("deployments", DeploymentViewSet, basename="deployment")
router.register("audit", AuditEntryViewSet, basename="audit")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(router.urls)),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api-auth/", include("rest_framework.urls")),
]
