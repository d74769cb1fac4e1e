{{/*
crm-lib.hookJob (dict "ctx" $ctx "component" … "hook" … "weight" <int> "container" … "args"
(list …) "backoffLimit" … "activeDeadlineSeconds" … ["env" <more env, YAML>] ["egress" <more
egress rules, YAML>]): a Job Helm runs as a hook (`hook`: its helm.sh/hook events; `weight`: its
turn among the hooks of those events in the whole release, umbrella included), named
<fullname>-<component>, with the restricted pod and the service's settings without TLS and
telemetry. Its ServiceAccount and its allow NetworkPolicy (DNS, plus `egress`) are hooks of the
same events weighted 20 and 10 below it: regular objects do not exist yet before the first
install. All three are deleted once every hook succeeded, and kept after a failure to be looked
at (until the next attempt replaces them). The service's regular default-deny policy selects its
pods too.
*/}}
{{- define "crm-lib.hookJob" -}}
{{- $ctx := .ctx -}}
{{- $cfg := $ctx.cfg -}}
{{- $name := printf "%s-%s" $ctx.fullname .component | trunc 63 | trimSuffix "-" -}}
{{- $meta := dict "ctx" $ctx "name" $name "component" .component -}}
{{- $weight := required (printf "%s: hookJob %s needs a weight" $ctx.service .component) .weight | int -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  {{- include "crm-lib.metadata" $meta | nindent 2 }}
  annotations:
    {{- include "crm-lib.hookAnnotations" (dict "hook" .hook "weight" (sub $weight 20)) | nindent 4 }}
automountServiceAccountToken: false
{{- if $cfg.networkPolicy.enabled }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  {{- include "crm-lib.metadata" $meta | nindent 2 }}
  annotations:
    {{- include "crm-lib.hookAnnotations" (dict "hook" .hook "weight" (sub $weight 10)) | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "crm-lib.selectorLabels" $meta | nindent 6 }}
  policyTypes: [Ingress, Egress]
  egress:
    {{- include "crm-lib.egress.dns" $ctx | nindent 4 }}
    {{- with .egress }}
    {{- . | nindent 4 }}
    {{- end }}
{{- end }}
---
apiVersion: batch/v1
kind: Job
metadata:
  {{- include "crm-lib.metadata" $meta | nindent 2 }}
  annotations:
    {{- include "crm-lib.hookAnnotations" (dict "hook" .hook "weight" $weight) | nindent 4 }}
spec:
  backoffLimit: {{ .backoffLimit }}
  activeDeadlineSeconds: {{ .activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "crm-lib.labels" $meta | nindent 8 }}
    spec:
      restartPolicy: Never
      serviceAccountName: {{ $name }}
      {{- include "crm-lib.podCommon" $ctx | nindent 6 }}
      containers:
        - name: {{ .container }}
          image: {{ include "crm-lib.image" $ctx | quote }}
          imagePullPolicy: {{ $cfg.image.pullPolicy }}
          args: {{ toJson .args }}
          env:
            {{- include "crm-lib.env" (dict "ctx" $ctx "migration" true) | nindent 12 }}
            {{- with .env }}
            {{- . | nindent 12 }}
            {{- end }}
          resources:
            {{- include "crm-lib.resources" $ctx | nindent 12 }}
          securityContext:
            {{- include "crm-lib.containerSecurityContext" $ctx | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        {{- include "crm-lib.tmpVolume" $ctx | nindent 8 }}
{{- end -}}

{{/*
crm-lib.migration (backends only): `migrate` (Alembic) as a pre-install,pre-upgrade hook, so the
schema is upgraded before the new pods start; a failure stops the release. It reaches DNS and the
service's own PostgreSQL only.
*/}}
{{- define "crm-lib.migration" -}}
{{- $ctx := dict "root" . -}}
{{- include "crm-lib.init" $ctx -}}
{{- if ne $ctx.flow.kind "backend" -}}
{{- fail (printf "%s: only backend services own a database and a migration" $ctx.service) -}}
{{- end -}}
{{- include "crm-lib.hookJob" (dict
  "ctx" $ctx
  "component" "migration"
  "hook" "pre-install,pre-upgrade"
  "weight" 0
  "container" "migrate"
  "args" (list "migrate")
  "backoffLimit" $ctx.cfg.migration.backoffLimit
  "activeDeadlineSeconds" $ctx.cfg.migration.activeDeadlineSeconds
  "egress" (include "crm-lib.egress.database" $ctx)) -}}
{{- end -}}

{{/* crm-lib.hookAnnotations (dict "hook" "pre-install,pre-upgrade" "weight" 0) */}}
{{- define "crm-lib.hookAnnotations" -}}
helm.sh/hook: {{ .hook }}
helm.sh/hook-weight: {{ .weight | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end -}}
