{{/*
crm-lib.mergeInto: merges .src into .dst in place (maps recursively; any other value set in .src,
false and 0 included, replaces the one in .dst; a null in .src keeps .dst's). Sprig's
mergeOverwrite cannot be used: it treats false, 0 and "" as unset, so a service could never turn
off what global.components turns on.
*/}}
{{- define "crm-lib.mergeInto" -}}
{{- $dst := .dst -}}
{{- range $key, $value := .src -}}
{{- $current := index $dst $key -}}
{{- if and (kindIs "map" $value) (kindIs "map" $current) -}}
{{- include "crm-lib.mergeInto" (dict "dst" $current "src" $value) -}}
{{- else if not (kindIs "invalid" $value) -}}
{{- $_ := set $dst $key (deepCopy $value) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
crm-lib.init: fills the context dict it is given ((dict "root" $)) with
  service   the service's name (the chart's name)
  cfg       global.components with the chart's own values merged over it
  flow      the service's row of the flow table (crm-lib.flows)
  fullname  <system>-<service> (or fullnameOverride): the Service's DNS name, stable across
            releases, so another chart can address it without knowing its release name
  http      it serves HTTP (the gateway, the console) rather than gRPC (the backends)
  chassis   its settings are the chassis' (crm_kit.settings.ServiceSettings): gRPC and its TLS,
            NATS, OTLP traces, the shutdown grace. The gateway and the backends; not the console,
            whose own settings class has none of them (it reaches only the gateway, over HTTP)
  envPrefix the prefix of its settings variables (the flow table's, CRM_ by default)
Every object template starts with it; the templates then read only $ctx.cfg.
*/}}
{{- define "crm-lib.init" -}}
{{- $root := .root -}}
{{- $service := .service | default $root.Chart.Name -}}
{{- $global := $root.Values.global | default dict -}}
{{- $cfg := deepCopy ($global.components | default dict) -}}
{{- include "crm-lib.mergeInto" (dict "dst" $cfg "src" (omit $root.Values "global")) -}}
{{- $flows := include "crm-lib.flows" . | fromYaml -}}
{{- if not (hasKey $flows $service) -}}
{{- fail (printf "crm-lib: %q is not in the flow table (crm-lib/templates/_flows.tpl)" $service) -}}
{{- end -}}
{{- $system := required "global.components.system (the system's name, e.g. crm) is required" $cfg.system -}}
{{- $_ := set . "service" $service -}}
{{- $_ := set . "cfg" $cfg -}}
{{- $_ := set . "flows" $flows -}}
{{- $_ := set . "flow" (get $flows $service) -}}
{{- $_ := set . "fullname" ($cfg.fullnameOverride | default (printf "%s-%s" $system $service) | trunc 63 | trimSuffix "-") -}}
{{- $_ := set . "http" (ne .flow.kind "backend") -}}
{{- $_ := set . "chassis" (ne .flow.kind "frontend") -}}
{{- $_ := set . "envPrefix" (.flow.envPrefix | default "CRM_") -}}
{{- end -}}

{{/* crm-lib.peerName (dict "ctx" $ctx "peer" "leads"): the Service name of another CRM service. */}}
{{- define "crm-lib.peerName" -}}
{{- printf "%s-%s" .ctx.cfg.system .peer | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels selecting the pods of one component of this release's service. */}}
{{- define "crm-lib.selectorLabels" -}}
app.kubernetes.io/name: {{ .ctx.service }}
app.kubernetes.io/instance: {{ .ctx.root.Release.Name }}
app.kubernetes.io/component: {{ .component | default .ctx.flow.kind }}
{{- end -}}

{{/* Labels selecting a peer service's server pods, whatever release installed it. */}}
{{- define "crm-lib.peerLabels" -}}
app.kubernetes.io/name: {{ .peer }}
app.kubernetes.io/part-of: {{ .ctx.cfg.system }}
app.kubernetes.io/component: {{ (get .ctx.flows .peer).kind }}
{{- end -}}

{{/* crm-lib.labels (dict "ctx" $ctx ["component" "migration"]): the recommended labels. */}}
{{- define "crm-lib.labels" -}}
{{- $ctx := .ctx -}}
helm.sh/chart: {{ printf "%s-%s" $ctx.root.Chart.Name $ctx.root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "crm-lib.selectorLabels" . }}
app.kubernetes.io/part-of: {{ $ctx.cfg.system }}
app.kubernetes.io/version: {{ include "crm-lib.version" $ctx | quote }}
app.kubernetes.io/managed-by: {{ $ctx.root.Release.Service }}
{{- end -}}

{{/* crm-lib.metadata (dict "ctx" $ctx "name" … ["component" …]): name, namespace, labels. */}}
{{- define "crm-lib.metadata" -}}
name: {{ .name | default .ctx.fullname }}
namespace: {{ .ctx.root.Release.Namespace }}
labels:
  {{- include "crm-lib.labels" . | nindent 2 }}
{{- end -}}

{{- define "crm-lib.version" -}}
{{- toString (.cfg.image.tag | default .root.Chart.AppVersion) | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
crm-lib.image: <registry>/<repository>:<tag>[@<digest>]. The tag defaults to the chart's
appVersion; "latest" (or any missing tag) is refused: a release must name what it runs.
*/}}
{{- define "crm-lib.image" -}}
{{- $image := .cfg.image -}}
{{- $repository := required (printf "%s: image.repository is required" .service) $image.repository -}}
{{- $tag := toString ($image.tag | default .root.Chart.AppVersion) -}}
{{- if or (not $tag) (eq $tag "latest") -}}
{{- fail (printf "%s: image.tag must name a release (not %q); set it or the chart's appVersion" .service $tag) -}}
{{- end -}}
{{- $ref := ternary (printf "%s/%s" (trimSuffix "/" $image.registry) $repository) $repository (not (empty $image.registry)) -}}
{{- if $image.digest -}}
{{- if not (regexMatch "^sha256:[a-f0-9]{64}$" $image.digest) -}}
{{- fail (printf "%s: image.digest must be sha256:<64 hex digits>" .service) -}}
{{- end -}}
{{- printf "%s:%s@%s" $ref $tag $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref $tag -}}
{{- end -}}
{{- end -}}

{{/*
Ports: fixed by the services' settings defaults (CRM_GRPC_PORT, CRM_HTTP_PORT, CRM_METRICS_PORT;
the console's CRM_CONSOLE_HTTP_PORT and CRM_CONSOLE_METRICS_PORT), so a pod listens where a local
run does. Each takes a context with the flow-table row (.flow): a service's own, or a peer's as
(dict "flow" (get $ctx.flows "gateway")).
*/}}
{{- define "crm-lib.port.grpc" -}}50051{{- end -}}
{{- define "crm-lib.port.http" -}}{{ ternary 8081 8080 (eq .flow.kind "frontend") }}{{- end -}}
{{- define "crm-lib.port.metrics" -}}{{ ternary 9108 9100 (eq .flow.kind "frontend") }}{{- end -}}
