{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "alert-router.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: the release name, unless it already contains the chart's. */}}
{{- define "alert-router.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "alert-router.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "alert-router.selectorLabels" -}}
app.kubernetes.io/name: {{ include "alert-router.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "alert-router.labels" -}}
helm.sh/chart: {{ include "alert-router.chart" . }}
{{ include "alert-router.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: alert-router
{{- end }}

{{- define "alert-router.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "alert-router.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "alert-router.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret that holds the env vars config refers to ("" when there is none). */}}
{{- define "alert-router.secretName" -}}
{{- if .Values.secret.existingSecret }}
{{- .Values.secret.existingSecret }}
{{- else if .Values.secret.create }}
{{- include "alert-router.fullname" . }}
{{- end }}
{{- end }}

{{/* The keys of that Secret exposed as env vars. */}}
{{- define "alert-router.secretKeys" -}}
{{- $keys := .Values.secret.keys }}
{{- if and .Values.secret.create (not $keys) }}
{{- $keys = keys .Values.secret.data | sortAlpha }}
{{- end }}
{{- toJson $keys }}
{{- end }}

{{/*
Validates the state settings and the replica count; fails the render on a bad combination.
SQLite is one process's embedded database: two pods would each keep their own, so HA
duplicates would no longer be deduplicated and each pod would notify on its own.
*/}}
{{- define "alert-router.validate" -}}
{{- $backend := .Values.state.backend }}
{{- if not (has $backend (list "sqlite" "redis")) }}
{{- fail (printf "state.backend must be sqlite or redis, got %q" $backend) }}
{{- end }}
{{- if and (eq $backend "sqlite") (gt (int .Values.replicaCount) 1) }}
{{- fail (printf "replicaCount=%d needs state.backend=redis: SQLite keeps its state in one pod, so several replicas would each notify on their own" (int .Values.replicaCount)) }}
{{- end }}
{{- if and (eq $backend "redis") (not .Values.state.redis.url) (not .Values.state.redis.existingSecret) }}
{{- fail "state.backend=redis needs state.redis.url or state.redis.existingSecret" }}
{{- end }}
{{- if and .Values.state.redis.url (not (regexMatch "^(rediss?|redis\\+sentinel)://" .Values.state.redis.url)) }}
{{- fail (printf "state.redis.url must start with redis://, rediss:// or redis+sentinel://, got %q" .Values.state.redis.url) }}
{{- end }}
{{- if and .Values.secret.create .Values.secret.existingSecret }}
{{- fail "set either secret.create or secret.existingSecret, not both" }}
{{- end }}
{{- if hasKey (.Values.config.state | default dict) "url" }}
{{- fail "do not set config.state.url: the chart sets it from state.backend (env ROUTER_STATE_URL)" }}
{{- end }}
{{- if and .Values.teams (hasKey .Values.config "teams") }}
{{- fail "do not set config.teams: the chart declares them from .Values.teams" }}
{{- end }}
{{- range $name, $team := .Values.teams }}
{{- if not (regexMatch "^[A-Za-z0-9][A-Za-z0-9_.-]*$" $name) }}
{{- fail (printf "teams.%s: a team name is letters, digits, '_', '.' and '-'" $name) }}
{{- end }}
{{- if not $team.matchers }}
{{- fail (printf "teams.%s.matchers: the team's scope is required, e.g. ['team=\"%s\"']" $name $name) }}
{{- end }}
{{- if eq (empty $team.file) (empty $team.existingConfigMap) }}
{{- fail (printf "teams.%s: set exactly one of file (the team file's content) or existingConfigMap" $name) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Where a team's file is mounted, relative to routes.yaml. */}}
{{- define "alert-router.teamPath" -}}
routes.d/{{ . }}.yaml
{{- end }}

{{/* routes.yaml: values' config plus state.url from the environment the Deployment sets. */}}
{{- define "alert-router.routes" -}}
{{- $config := deepCopy .Values.config }}
{{- $state := deepCopy ($config.state | default dict) }}
{{- $_ := set $state "url" "${ROUTER_STATE_URL}" }}
{{- $_ := set $config "state" $state }}
{{- if .Values.webhookAuth.enabled }}
{{- $server := deepCopy ($config.server | default dict) }}
{{- $auth := deepCopy ($server.auth | default dict) }}
{{- if not (hasKey $auth "alertmanager") }}
{{- $_ := set $auth "alertmanager" (dict "bearer_token" (printf "${%s}" .Values.webhookAuth.alertmanagerKey)) }}
{{- end }}
{{- if not (hasKey $auth "argocd") }}
{{- $_ := set $auth "argocd" (dict "bearer_token" (printf "${%s}" .Values.webhookAuth.argocdKey)) }}
{{- end }}
{{- $_ := set $server "auth" $auth }}
{{- $_ := set $config "server" $server }}
{{- end }}
{{- if .Values.teams }}
{{- $teams := list }}
{{- range $name, $team := .Values.teams }}
{{- $entry := dict "name" $name "file" (include "alert-router.teamPath" $name) "matchers" $team.matchers }}
{{- with $team.fallback }}
{{- $_ := set $entry "fallback" . }}
{{- end }}
{{- $teams = append $teams $entry }}
{{- end }}
{{- $_ := set $config "teams" $teams }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* Label selector of this release's metrics, for the PrometheusRule's expressions. */}}
{{- define "alert-router.metricsSelector" -}}
namespace="{{ .Release.Namespace }}", job="{{ include "alert-router.fullname" . }}"
{{- end }}

{{/* The Secret holding the webhook tokens: the given one, or the chart's own. */}}
{{- define "alert-router.webhookSecretName" -}}
{{- .Values.webhookAuth.existingSecret | default (printf "%s-webhook-auth" (include "alert-router.fullname" .)) }}
{{- end }}

{{/*
A webhook token: the one already in the chart's Secret (an upgrade keeps it), else a new
random one. `lookup` answers nothing under `helm template`, which then shows a fresh token.
*/}}
{{- define "alert-router.webhookToken" -}}
{{- $root := index . 0 }}
{{- $key := index . 1 }}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace (include "alert-router.webhookSecretName" $root) }}
{{- if and $existing (hasKey $existing.data $key) }}
{{- index $existing.data $key | b64dec }}
{{- else }}
{{- randAlphaNum 40 }}
{{- end }}
{{- end }}
