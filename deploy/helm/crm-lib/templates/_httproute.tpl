{{/* crm-lib.httpRoute (httpRoute.enabled): the Gateway API's entry point beside the Ingress — the
same public listener (the gateway's API, the console's pages) attached to the Gateways of
httpRoute.parentRefs for httpRoute.hostnames. Backends are never public. The request body cap
the Ingress gets from an nginx annotation is the Gateway implementation's own policy here: the
gateway still refuses each route's excess itself (CRM_MAX_BODY_BYTES, CRM_LEAD_IMPORT_MAX_BYTES). */}}
{{- define "crm-lib.httpRoute" -}}
{{- $ctx := dict "root" . -}}
{{- include "crm-lib.init" $ctx -}}
{{- $route := $ctx.cfg.httpRoute | default dict -}}
{{- if $route.enabled -}}
{{- if not $ctx.http -}}
{{- fail (printf "%s: only the gateway and the console are public; a backend may have no HTTPRoute" $ctx.service) -}}
{{- end -}}
{{- if and (eq $ctx.flow.kind "gateway") (not $ctx.cfg.trustedProxies) -}}
{{- fail (printf "%s: trustedProxies is empty while the HTTPRoute is enabled: every visitor would count as the Gateway's address (set its pods' CIDR)" $ctx.service) -}}
{{- end -}}
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  {{- include "crm-lib.metadata" (dict "ctx" $ctx) | nindent 2 }}
  {{- with $route.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  parentRefs:
    {{- toYaml (required (printf "%s: httpRoute.parentRefs (the Gateways to attach to) is required when the HTTPRoute is enabled" $ctx.service) $route.parentRefs) | nindent 4 }}
  hostnames:
    {{- toYaml (required (printf "%s: httpRoute.hostnames is required when the HTTPRoute is enabled" $ctx.service) $route.hostnames) | nindent 4 }}
  rules:
    - matches:
        - path:
            type: PathPrefix
            value: /
      backendRefs:
        - name: {{ $ctx.fullname }}
          port: {{ include "crm-lib.port.http" $ctx }}
{{- end -}}
{{- end -}}
