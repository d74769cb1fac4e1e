{{/*
crm-lib.natsProvisioning (dict "root" <the gateway chart's context> "settings" <natsProvisioning>):
the hook Job that creates or updates the CRM stream and the gateway's Idempotency-Key bucket as
the NATS `provisioner` user (`python -m crm_kit.nats_access provision`), before the services
start: no service may create or change either (docs/security.md, "The event bus"). It runs the
gateway's image with the gateway's NATS address, TLS and extraEnv (so CRM_STREAM_* and
CRM_IDEMPOTENCY_* given there reach the bucket and the stream as the gateway reads them), and its
own NATS user from <system>-provisioner-nats (TLS files: <system>-provisioner-nats-tls), named
like every identity's Secret (<system>-<identity>-nats).
Its pods reach DNS and NATS only: a hook NetworkPolicy allows that on the first install, and a
regular default-deny policy keeps every other flow closed.
*/}}
{{- define "crm-lib.natsProvisioning" -}}
{{- $ctx := dict "root" .root -}}
{{- include "crm-lib.init" $ctx -}}
{{- $settings := .settings -}}
{{- $system := $ctx.cfg.system -}}
{{- $_ := set $ctx "service" "nats-provisioner" -}}
{{- $_ := set $ctx "fullname" (printf "%s-nats-provisioner" $system | trunc 63 | trimSuffix "-") -}}
{{- $cfg := deepCopy $ctx.cfg -}}
{{- $_ := set $cfg.nats.auth "enabled" true -}}
{{- $_ := set $cfg.nats.auth "existingSecret" ($settings.existingSecret | default (printf "%s-provisioner-nats" $system)) -}}
{{- $_ := set $cfg.nats.auth "userKey" $settings.userKey -}}
{{- $_ := set $cfg.nats.auth "passwordKey" $settings.passwordKey -}}
{{- $_ := set $cfg.nats.tls "existingSecret" ($settings.tlsExistingSecret | default (printf "%s-provisioner-nats-tls" $system)) -}}
{{- $_ := set $ctx "cfg" $cfg -}}
{{- $name := $ctx.fullname -}}
{{- $meta := dict "ctx" $ctx "name" $name "component" "nats-provisioning" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  {{- include "crm-lib.metadata" $meta | nindent 2 }}
  annotations:
    {{- include "crm-lib.hookAnnotations" (dict "hook" "pre-install,pre-upgrade" "weight" "-20") | nindent 4 }}
automountServiceAccountToken: false
{{- if $cfg.networkPolicy.enabled }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  {{- include "crm-lib.metadata" (dict "ctx" $ctx "name" (printf "%s-default-deny" $name) "component" "nats-provisioning") | nindent 2 }}
spec:
  podSelector:
    matchLabels:
      {{- include "crm-lib.selectorLabels" $meta | nindent 6 }}
  policyTypes: [Ingress, Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  {{- include "crm-lib.metadata" $meta | nindent 2 }}
  annotations:
    {{- include "crm-lib.hookAnnotations" (dict "hook" "pre-install,pre-upgrade" "weight" "-10") | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "crm-lib.selectorLabels" $meta | nindent 6 }}
  policyTypes: [Ingress, Egress]
  egress:
    {{- include "crm-lib.egress.dns" $ctx | nindent 4 }}
    # NATS JetStream
    - to:
        {{- include "crm-lib.peers" (dict "ctx" $ctx "peers" $cfg.nats.networkPeers "what" "nats.networkPeers") | nindent 8 }}
      ports:
        - protocol: TCP
          port: {{ $cfg.nats.port }}
{{- end }}
---
apiVersion: batch/v1
kind: Job
metadata:
  {{- include "crm-lib.metadata" $meta | nindent 2 }}
  annotations:
    {{- include "crm-lib.hookAnnotations" (dict "hook" "pre-install,pre-upgrade" "weight" "0") | nindent 4 }}
spec:
  backoffLimit: {{ $settings.backoffLimit }}
  activeDeadlineSeconds: {{ $settings.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "crm-lib.labels" $meta | nindent 8 }}
    spec:
      restartPolicy: Never
      serviceAccountName: {{ $name }}
      {{- include "crm-lib.podCommon" $ctx | nindent 6 }}
      containers:
        - name: provision
          image: {{ include "crm-lib.image" $ctx | quote }}
          imagePullPolicy: {{ $cfg.image.pullPolicy }}
          command: [python, -m, crm_kit.nats_access]
          args: [provision]
          env:
            - name: CRM_ENVIRONMENT
              value: {{ $cfg.environment | quote }}
            - name: CRM_SERVICE_NAME
              value: provisioner
            - name: CRM_LOG_LEVEL
              value: {{ $cfg.logLevel | quote }}
            {{- include "crm-lib.natsEnv" $ctx | nindent 12 }}
            - name: CRM_STREAM_REPLICAS
              value: {{ $cfg.streamReplicas | quote }}
            {{- range $cfg.extraEnv }}
            - name: {{ .name }}
              value: {{ .value | quote }}
            {{- end }}
          resources:
            {{- include "crm-lib.resources" $ctx | nindent 12 }}
          securityContext:
            {{- include "crm-lib.containerSecurityContext" $ctx | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if $cfg.nats.tls.enabled }}
            - name: nats-tls
              mountPath: {{ include "crm-lib.natsTlsDir" $ctx }}
              readOnly: true
            {{- end }}
      volumes:
        {{- include "crm-lib.tmpVolume" $ctx | nindent 8 }}
        {{- if $cfg.nats.tls.enabled }}
        - name: nats-tls
          secret:
            secretName: {{ include "crm-lib.natsTlsSecretName" $ctx }}
            defaultMode: 288  # 0440: owner root, group fsGroup
        {{- end }}
{{- end -}}
