{{/*
crm-lib.peers (dict "ctx" $ctx "peers" list "what" "values.path"): a `from:`/`to:` list of
NetworkPolicyPeers. An empty list would mean "everyone" to Kubernetes, so it is refused.
*/}}
{{- define "crm-lib.peers" -}}
{{- if empty .peers -}}
{{- fail (printf "%s: %s is empty; a NetworkPolicy rule without peers would allow everyone" .ctx.service .what) -}}
{{- end -}}
{{- toYaml .peers -}}
{{- end -}}

{{/*
crm-lib.networkPolicy (networkPolicy.enabled): a default-deny policy (ingress and egress) over
every pod of the service (server and migration), and the server's allow rules, derived from the
flow table (crm-lib.flows) and the peers in values.
*/}}
{{- define "crm-lib.networkPolicy" -}}
{{- $ctx := dict "root" . -}}
{{- include "crm-lib.init" $ctx -}}
{{- $cfg := $ctx.cfg -}}
{{- $np := $cfg.networkPolicy -}}
{{- if $np.enabled -}}
{{- $backend := eq $ctx.flow.kind "backend" -}}
{{- $callers := (include "crm-lib.callers" $ctx | fromYaml).callers -}}
{{- $httpCallers := (include "crm-lib.httpCallers" $ctx | fromYaml).callers -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  {{- include "crm-lib.metadata" (dict "ctx" $ctx "name" (printf "%s-default-deny" $ctx.fullname)) | nindent 2 }}
spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/name: {{ $ctx.service }}
      app.kubernetes.io/instance: {{ $ctx.root.Release.Name }}
  policyTypes: [Ingress, Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  {{- include "crm-lib.metadata" (dict "ctx" $ctx) | nindent 2 }}
spec:
  podSelector:
    matchLabels:
      {{- include "crm-lib.selectorLabels" (dict "ctx" $ctx) | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    {{- if $ctx.http }}
    # the public listener, from the ingress controller
    - from:
        {{- include "crm-lib.peers" (dict "ctx" $ctx "peers" $np.ingressController.peers "what" "networkPolicy.ingressController.peers") | nindent 8 }}
      ports:
        - protocol: TCP
          port: {{ include "crm-lib.port.http" $ctx }}
    {{- end }}
    {{- if $httpCallers }}
    # HTTP, from the services that call this one: {{ join ", " $httpCallers }}
    - from:
        {{- range $httpCallers }}
        - podSelector:
            matchLabels:
              {{- include "crm-lib.peerLabels" (dict "ctx" $ctx "peer" .) | nindent 14 }}
        {{- end }}
      ports:
        - protocol: TCP
          port: {{ include "crm-lib.port.http" $ctx }}
    {{- end }}
    {{- if $callers }}
    # gRPC, from the services that call this one: {{ join ", " $callers }}
    - from:
        {{- range $callers }}
        - podSelector:
            matchLabels:
              {{- include "crm-lib.peerLabels" (dict "ctx" $ctx "peer" .) | nindent 14 }}
        {{- end }}
      ports:
        - protocol: TCP
          port: {{ include "crm-lib.port.grpc" $ctx }}
    {{- end }}
    {{- with $np.monitoring.peers }}
    # metrics, from the monitoring namespace only
    - from:
        {{- toYaml . | nindent 8 }}
      ports:
        - protocol: TCP
          port: {{ include "crm-lib.port.metrics" $ctx }}
    {{- end }}
  egress:
    {{- include "crm-lib.egress.dns" $ctx | nindent 4 }}
    {{- if $backend }}
    {{- include "crm-lib.egress.database" $ctx | nindent 4 }}
    {{- end }}
    {{- if $ctx.chassis }}
    # NATS JetStream (backends: events; the gateway: its Idempotency-Key bucket)
    - to:
        {{- include "crm-lib.peers" (dict "ctx" $ctx "peers" $cfg.nats.networkPeers "what" "nats.networkPeers") | nindent 8 }}
      ports:
        - protocol: TCP
          port: {{ $cfg.nats.port }}
    {{- end }}
    {{- if and $ctx.chassis $cfg.otlp.endpoint }}
    # OTLP collector (traces)
    - to:
        {{- include "crm-lib.peers" (dict "ctx" $ctx "peers" $cfg.otlp.networkPeers "what" "otlp.networkPeers (otlp.endpoint is set)") | nindent 8 }}
      ports:
        - protocol: TCP
          port: {{ $cfg.otlp.port }}
    {{- end }}
    {{- range $ctx.flow.calls }}
    # gRPC to {{ . }}
    - to:
        - podSelector:
            matchLabels:
              {{- include "crm-lib.peerLabels" (dict "ctx" $ctx "peer" .) | nindent 14 }}
      ports:
        - protocol: TCP
          port: {{ include "crm-lib.port.grpc" $ctx }}
    {{- end }}
    {{- range $ctx.flow.httpCalls }}
    # HTTP to {{ . }}
    - to:
        - podSelector:
            matchLabels:
              {{- include "crm-lib.peerLabels" (dict "ctx" $ctx "peer" .) | nindent 14 }}
      ports:
        - protocol: TCP
          port: {{ include "crm-lib.port.http" (dict "flow" (get $ctx.flows .)) }}
    {{- end }}
    {{- range $ctx.flow.external }}
    {{- $ext := get $cfg . | default dict }}
    {{- $target := "always" }}
    {{- if hasKey $ext "url" }}{{ $target = $ext.url }}{{ else if hasKey $ext "host" }}{{ $target = $ext.host }}{{ end }}
    {{- if $target }}
    # {{ . }} (outside the cluster)
    - to:
        {{- include "crm-lib.peers" (dict "ctx" $ctx "peers" $ext.networkPeers "what" (printf "%s.networkPeers" .)) | nindent 8 }}
      ports:
        - protocol: TCP
          port: {{ required (printf "%s: %s.port is required" $ctx.service .) $ext.port }}
    {{- end }}
    {{- end }}
{{- end -}}
{{- end -}}

{{- define "crm-lib.egress.dns" -}}
# DNS
- to:
    {{- include "crm-lib.peers" (dict "ctx" . "peers" .cfg.networkPolicy.dns.peers "what" "networkPolicy.dns.peers") | nindent 4 }}
  ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- end -}}

{{- define "crm-lib.egress.database" -}}
# the service's own PostgreSQL
{{ include "crm-lib.egress.postgres" (dict "ctx" . "database" .cfg.database "cluster" (printf "%s-db" .fullname) "what" "database") }}
{{- end -}}

{{/*
crm-lib.egress.postgres (dict "ctx" $ctx "database" <a database block> "cluster" <default
CloudNativePG cluster> "what" <the block's values path>): egress on database.port to
database.networkPeers, by default the pods of the CloudNativePG cluster database.cnpgCluster
(empty: `cluster`); with database.cloudnativepg on, the pods of its pooler (or of `cluster`).
*/}}
{{- define "crm-lib.egress.postgres" -}}
{{- $peers := .database.networkPeers -}}
{{- $cnpg := .database.cloudnativepg | default dict -}}
{{- if and $cnpg.enabled $cnpg.pooler -}}
{{- $peers = list (dict "podSelector" (dict "matchLabels" (dict "cnpg.io/poolerName" (printf "%s-pooler" .cluster)))) -}}
{{- else if $cnpg.enabled -}}
{{- $peers = list (dict "podSelector" (dict "matchLabels" (dict "cnpg.io/cluster" .cluster))) -}}
{{- else if not $peers -}}
{{- $peers = list (dict "podSelector" (dict "matchLabels" (dict "cnpg.io/cluster" (.database.cnpgCluster | default .cluster)))) -}}
{{- end -}}
- to:
    {{- include "crm-lib.peers" (dict "ctx" .ctx "peers" $peers "what" (printf "%s.networkPeers" .what)) | nindent 4 }}
  ports:
    - protocol: TCP
      port: {{ required (printf "%s: %s.port is required" .ctx.service .what) .database.port }}
{{- end -}}
