{{/* crm-lib.ingress (ingress.enabled): a public entry point (the gateway's API, the console's
pages), to the service's http port. Backends are never public. */}}
{{- define "crm-lib.ingress" -}}
{{- $ctx := dict "root" . -}}
{{- include "crm-lib.init" $ctx -}}
{{- $ing := $ctx.cfg.ingress | default dict -}}
{{- if $ing.enabled -}}
{{- if not $ctx.http -}}
{{- fail (printf "%s: only the gateway and the console are public; a backend may have no Ingress" $ctx.service) -}}
{{- end -}}
{{- $annotations := deepCopy ($ing.annotations | default dict) -}}
{{- if eq $ctx.flow.kind "gateway" -}}
{{- if not $ctx.cfg.trustedProxies -}}
{{- fail (printf "%s: trustedProxies is empty while the Ingress is enabled: every visitor would count as the ingress controller's address (set its pods' CIDR)" $ctx.service) -}}
{{- end -}}
{{- /* The ingress admits a body up to the CSV upload's cap, written from the same value as the
gateway's CRM_LEAD_IMPORT_MAX_BYTES so the two cannot drift; the gateway refuses each route's
excess itself (CRM_MAX_BODY_BYTES by Content-Length, before reading). Bodies stream through
(no request buffering): the ingress does not spool 100 MB for a route that takes 1 MiB. */ -}}
{{- $bodySize := "nginx.ingress.kubernetes.io/proxy-body-size" -}}
{{- if hasKey $annotations $bodySize -}}
{{- fail (printf "%s: set leadImportMaxBytes, not the %s annotation (the chart writes it from that value)" $ctx.service $bodySize) -}}
{{- end -}}
{{- $annotations = merge $annotations (dict $bodySize (printf "%d" (int64 $ctx.cfg.leadImportMaxBytes)) "nginx.ingress.kubernetes.io/proxy-request-buffering" "off") -}}
{{- end -}}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  {{- include "crm-lib.metadata" (dict "ctx" $ctx) | nindent 2 }}
  {{- with $annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with $ing.className }}
  ingressClassName: {{ . }}
  {{- end }}
  {{- with $ing.tls }}
  tls:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  rules:
    {{- range required (printf "%s: ingress.hosts is required when the Ingress is enabled" $ctx.service) $ing.hosts }}
    - host: {{ .host | quote }}
      http:
        paths:
          {{- range .paths | default (list (dict "path" "/" "pathType" "Prefix")) }}
          - path: {{ .path }}
            pathType: {{ .pathType | default "Prefix" }}
            backend:
              service:
                name: {{ $ctx.fullname }}
                port:
                  name: http
          {{- end }}
    {{- end }}
{{- end -}}
{{- end -}}
