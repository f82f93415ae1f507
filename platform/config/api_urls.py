"""One router for the whole JSON API; each app registers its viewsets here."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from accounts.api import TokenObtainView
from annotation.active_learning.api import urlpatterns as active_learning_urlpatterns
from annotation.api import AnnotationViewSet, InvitationViewSet, LabelSchemaViewSet, ProjectViewSet
from annotation.browse.api import urlpatterns as browse_urlpatterns
from annotation.distribution.api import urlpatterns as annotate_urlpatterns
from annotation.export.api import urlpatterns as export_urlpatterns
from annotation.label_studio.api import urlpatterns as label_studio_urlpatterns
from annotation.llm.api import urlpatterns as llm_urlpatterns
from annotation.predictions.api import urlpatterns as predictions_urlpatterns
from annotation.quality.api import urlpatterns as quality_urlpatterns
from corpora.api import ConversationViewSet, CorpusViewSet, LanguageViewSet, SpeakerViewSet, UtteranceViewSet
from jobs.api import JobViewSet

router = DefaultRouter()
router.register("languages", LanguageViewSet, basename="language")
router.register("corpora", CorpusViewSet, basename="corpus")
router.register("conversations", ConversationViewSet, basename="conversation")
router.register("speakers", SpeakerViewSet, basename="speaker")
router.register("utterances", UtteranceViewSet, basename="utterance")
router.register("schemas", LabelSchemaViewSet, basename="labelschema")
router.register("projects", ProjectViewSet, basename="project")
router.register("annotations", AnnotationViewSet, basename="annotation")
router.register("invitations", InvitationViewSet, basename="invitation")
router.register("jobs", JobViewSet, basename="job")

# The annotators' routes come first: Django tries patterns in order, and these are most of the API's traffic.
urlpatterns = [
    *annotate_urlpatterns,
    path("auth/token/", TokenObtainView.as_view(), name="api-token"),
    *router.urls,
]
urlpatterns += quality_urlpatterns
urlpatterns += browse_urlpatterns
urlpatterns += predictions_urlpatterns
urlpatterns += active_learning_urlpatterns
urlpatterns += export_urlpatterns
urlpatterns += label_studio_urlpatterns
urlpatterns += llm_urlpatterns
