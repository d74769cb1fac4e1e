{{/*
crm-lib.migration (backends only): `migrate` (Alembic) as a pre-install,pre-upgrade hook, so the
schema is upgraded before the new pods start; a failure stops the release. Its ServiceAccount
and NetworkPolicy are hooks too (lower weights): regular objects do not exist yet on the first
install. All three are deleted once every hook succeeded, and kept after a failure to be looked
at (until the next attempt replaces them).
*/}}
{{- define "crm-lib.migration" -}}
{{- $ctx := dict "root" . -}}
{{- include "crm-lib.init" $ctx -}}
{{- $cfg := $ctx.cfg -}}
{{- if ne $ctx.flow.kind "backend" -}}
{{- fail (printf "%s: only backend services own a database and a migration" $ctx.service) -}}
{{- end -}}
{{- $name := printf "%s-migration" $ctx.fullname | trunc 63 | trimSuffix "-" -}}
{{- $meta := dict "ctx" $ctx "name" $name "component" "migration" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  {{- include "crm-lib.metadata" $meta | nindent 2 }}
  annotations:
    {{- include "crm-lib.hookAnnotations" "-20" | nindent 4 }}
automountServiceAccountToken: false
{{- if $cfg.networkPolicy.enabled }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  {{- include "crm-lib.metadata" $meta | nindent 2 }}
  annotations:
    {{- include "crm-lib.hookAnnotations" "-10" | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "crm-lib.selectorLabels" $meta | nindent 6 }}
  policyTypes: [Ingress, Egress]
  egress:
    {{- include "crm-lib.egress.dns" $ctx | nindent 4 }}
    {{- include "crm-lib.egress.database" $ctx | nindent 4 }}
{{- end }}
---
apiVersion: batch/v1
kind: Job
metadata:
  {{- include "crm-lib.metadata" $meta | nindent 2 }}
  annotations:
    {{- include "crm-lib.hookAnnotations" "0" | nindent 4 }}
spec:
  backoffLimit: {{ $cfg.migration.backoffLimit }}
  activeDeadlineSeconds: {{ $cfg.migration.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "crm-lib.labels" $meta | nindent 8 }}
    spec:
      restartPolicy: Never
      serviceAccountName: {{ $name }}
      {{- include "crm-lib.podCommon" $ctx | nindent 6 }}
      containers:
        - name: migrate
          image: {{ include "crm-lib.image" $ctx | quote }}
          imagePullPolicy: {{ $cfg.image.pullPolicy }}
          args: [migrate]
          env:
            {{- include "crm-lib.env" (dict "ctx" $ctx "migration" true) | nindent 12 }}
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

{{- define "crm-lib.hookAnnotations" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ . | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end -}}
