"""Enrichment: Loki log excerpts and Grafana/Alertmanager/Argo CD links for notifications."""
