"""Checks of the deployment configuration: Dockerfiles, compose, Knative, CI, dashboards."""
