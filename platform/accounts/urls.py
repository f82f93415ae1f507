from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/logout/", views.SignOutView.as_view(), name="logout"),
    path("accounts/tokens/", views.api_tokens, name="api-tokens"),
    path("projects/", views.projects, name="projects"),
    path("projects/new/", views.project_create, name="project-create"),
    path("projects/<int:project_id>/annotate/", views.annotate, name="annotate"),
    path("projects/<int:project_id>/manage/", views.project_manage, name="project-manage"),
    path("projects/<int:project_id>/dashboard/", views.project_dashboard, name="project-dashboard"),
    path("projects/<int:project_id>/models/", views.project_models, name="project-models-page"),
    path("projects/<int:project_id>/review/", views.project_review, name="project-review"),
    path("corpora/<int:corpus_id>/quality/", views.corpus_quality, name="corpus-quality"),
    path("projects/<int:project_id>/items/", views.project_items, name="project-items"),
    path("projects/<int:project_id>/import/", views.project_import, name="project-import"),
    path("media/<path:path>", views.media, name="media"),
]
