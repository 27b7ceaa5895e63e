from django.urls import include, path

# Stripe is set up to send its webhooks to /payments/process/stripe/
urlpatterns = [path("payments/", include("payments.urls"))]
