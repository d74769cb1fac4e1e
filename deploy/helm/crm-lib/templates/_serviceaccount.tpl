{{/* crm-lib.serviceAccount: the server's identity; no API token (the services never call the API). */}}
{{- define "crm-lib.serviceAccount" -}}
{{- $ctx := dict "root" . -}}
{{- include "crm-lib.init" $ctx -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  {{- include "crm-lib.metadata" (dict "ctx" $ctx) | nindent 2 }}
automountServiceAccountToken: false
{{- end -}}
