{{/*
Pod Security Standard "restricted" for every pod: non-root uid/gid 10001 (the images' user),
RuntimeDefault seccomp, no privilege escalation, every capability dropped, read-only root
filesystem with an emptyDir at /tmp, no service-account token, no service-link variables (they
would put CRM_LEADS_PORT-like names into the CRM_* settings namespace).
*/}}
{{- define "crm-lib.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .cfg.podSecurity.runAsUser }}
runAsGroup: {{ .cfg.podSecurity.runAsGroup }}
fsGroup: {{ .cfg.podSecurity.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "crm-lib.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .cfg.podSecurity.runAsUser }}
runAsGroup: {{ .cfg.podSecurity.runAsGroup }}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The pod-level fields shared by the Deployment and the migration Job. */}}
{{- define "crm-lib.podCommon" -}}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- include "crm-lib.podSecurityContext" . | nindent 2 }}
{{- with .cfg.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .cfg.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .cfg.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .cfg.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .cfg.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "crm-lib.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .cfg.tmpSizeLimit }}
{{- end -}}

{{- define "crm-lib.reportEngineDir" -}}/var/lib/crm/report-engine{{- end -}}

{{/* reporting's DuckDB copy of the fact tables has a volume of its own (reportEngine.engine duckdb). */}}
{{- define "crm-lib.reportEngineVolume" -}}
{{- and (eq .service "reporting") (eq ((.cfg.reportEngine | default dict).engine | default "") "duckdb") -}}
{{- end -}}

{{- define "crm-lib.tlsDir" -}}/etc/crm/grpc-tls{{- end -}}

{{- define "crm-lib.tlsSecretName" -}}
{{- .cfg.grpcTls.existingSecret | default (printf "%s-grpc-tls" .fullname) -}}
{{- end -}}

{{/*
crm-lib.allowedClientNames (ctx): with mTLS, the client certificate names (SANs) a backend serves,
as a JSON list: each caller of the flow table by its Service name (the name its certificate is
issued for, the one it is reached by), plus grpcTls.extraClientNames (e.g. an operator's crm-admin
certificate). Derived from the table, so a new flow cannot be allowed in one place only.
*/}}
{{- define "crm-lib.allowedClientNames" -}}
{{- $ctx := . -}}
{{- $names := list -}}
{{- range (include "crm-lib.callers" $ctx | fromYaml).callers -}}
{{- $names = append $names (include "crm-lib.peerName" (dict "ctx" $ctx "peer" .)) -}}
{{- end -}}
{{- concat $names ($ctx.cfg.grpcTls.extraClientNames | default list) | uniq | toJson -}}
{{- end -}}

{{- define "crm-lib.natsTlsDir" -}}/etc/crm/nats-tls{{- end -}}

{{- define "crm-lib.natsTlsSecretName" -}}
{{- .cfg.nats.tls.existingSecret | default (printf "%s-nats-tls" .fullname) -}}
{{- end -}}

{{/*
crm-lib.natsEnv (ctx): how a service reaches NATS: the URL, its own NATS user from a Secret
(<system>-<service>-nats by default; the server's permission table names the user after the
service, see docs/security.md "The event bus"), and TLS files mounted from another. Production
without credentials is refused here as it is by the service itself, and so is production without
TLS, unless nats.tls.serviceMesh says a mesh provides mTLS instead.
*/}}
{{- define "crm-lib.natsEnv" -}}
{{- $cfg := .cfg -}}
{{- $nats := $cfg.nats -}}
{{- if and (eq $cfg.environment "production") (not $nats.auth.enabled) (not (and $nats.tls.enabled $nats.tls.certKey)) -}}
{{- fail (printf "%s: production needs NATS credentials: nats.auth.enabled (a user and password from a Secret) or a client certificate (nats.tls.certKey)" .service) -}}
{{- end }}
{{- if and (eq $cfg.environment "production") (not $nats.tls.enabled) (not $nats.tls.serviceMesh) -}}
{{- fail (printf "%s: production needs TLS to NATS (the password and every event cross the network): nats.tls.enabled with the CA in a Secret, or nats.tls.serviceMesh=true when a service mesh already wraps the connection in mTLS" .service) -}}
{{- end }}
- name: CRM_NATS_URL
  value: {{ required (printf "%s: nats.url is required" .service) $nats.url | quote }}
{{- if $nats.auth.enabled }}
- name: CRM_NATS_USER
  valueFrom:
    secretKeyRef:
      name: {{ $nats.auth.existingSecret | default (printf "%s-nats" .fullname) }}
      key: {{ $nats.auth.userKey }}
- name: CRM_NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $nats.auth.existingSecret | default (printf "%s-nats" .fullname) }}
      key: {{ $nats.auth.passwordKey }}
{{- end }}
{{- if $nats.tls.enabled }}
{{- with $nats.tls.caKey }}
- name: CRM_NATS_TLS_CA_FILE
  value: {{ printf "%s/%s" (include "crm-lib.natsTlsDir" $) . | quote }}
{{- end }}
{{- if $nats.tls.certKey }}
- name: CRM_NATS_TLS_CERT_FILE
  value: {{ printf "%s/%s" (include "crm-lib.natsTlsDir" .) $nats.tls.certKey | quote }}
- name: CRM_NATS_TLS_KEY_FILE
  value: {{ printf "%s/%s" (include "crm-lib.natsTlsDir" .) (required (printf "%s: nats.tls.keyKey is required with nats.tls.certKey" .service) $nats.tls.keyKey) | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* crm-lib.resources: requests and limits are both required (a pod without them is refused). */}}
{{- define "crm-lib.resources" -}}
{{- $r := .cfg.resources | default dict -}}
{{- if not (and $r.requests $r.limits $r.requests.cpu $r.requests.memory $r.limits.memory) -}}
{{- fail (printf "%s: resources.requests (cpu, memory) and resources.limits (memory) are required" .service) -}}
{{- end -}}
{{- toYaml $r -}}
{{- end -}}

{{/*
crm-lib.env (dict "ctx" $ctx "migration" bool): the CRM_* settings. Secrets only by reference
(secretKeyRef to an existing Secret): the database URL, the SMS provider's key, the console's
session key. The migration Job gets the same settings without TLS and telemetry (its settings are
validated the same way: production refuses a default SMS key even for `migrate`). The names take
the service's prefix (envPrefix: CRM_CONSOLE_ for the console, CRM_ for the rest).
*/}}
{{- define "crm-lib.env" -}}
{{- $ctx := .ctx -}}
{{- $cfg := $ctx.cfg -}}
{{- $prefix := $ctx.envPrefix -}}
- name: {{ $prefix }}ENVIRONMENT
  value: {{ $cfg.environment | quote }}
- name: {{ $prefix }}SERVICE_NAME
  value: {{ $ctx.service | quote }}
- name: {{ $prefix }}LOG_LEVEL
  value: {{ $cfg.logLevel | quote }}
- name: {{ $prefix }}ACCESS_LOG
  value: {{ $cfg.accessLog | quote }}
{{- if not .migration }}
{{- /* The settings default to loopback (a laptop); in a pod Prometheus scrapes the pod's IP. */}}
- name: {{ $prefix }}METRICS_HOST
  value: "0.0.0.0"
- name: {{ $prefix }}METRICS_PORT
  value: {{ include "crm-lib.port.metrics" $ctx | quote }}
{{- if $ctx.chassis }}
- name: CRM_SHUTDOWN_GRACE_SECONDS
  value: {{ $cfg.shutdownGraceSeconds | quote }}
{{- range $ctx.flow.calls }}
- name: CRM_{{ upper . }}_ADDR
  value: {{ index ($cfg.addresses | default dict) . | default (printf "%s:%s" (include "crm-lib.peerName" (dict "ctx" $ctx "peer" .)) (include "crm-lib.port.grpc" $ctx)) | quote }}
{{- end }}
{{- with $cfg.otlp.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- /* Spans say which namespace, pod and node they come from (the downward API). */}}
- name: K8S_NAMESPACE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: OTEL_RESOURCE_ATTRIBUTES
  value: "k8s.namespace.name=$(K8S_NAMESPACE_NAME),k8s.pod.name=$(K8S_POD_NAME),k8s.node.name=$(K8S_NODE_NAME),service.namespace={{ $cfg.system }}"
{{- end }}
{{- end }}
{{- end }}
{{- if eq $ctx.flow.kind "backend" }}
{{- $cnpg := $cfg.database.cloudnativepg | default dict }}
{{- if $cnpg.enabled }}
# The URL CloudNativePG generated for the database's owner (the crm-databases chart's cluster).
- name: CRM_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ printf "%s-db-app" $ctx.fullname }}
      key: uri
{{- if $cnpg.pooler }}
- name: CRM_DATABASE_HOST
  value: {{ printf "%s-db-pooler:%v" $ctx.fullname $cfg.database.port | quote }}
{{- end }}
{{- else }}
- name: CRM_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $cfg.database.existingSecret | default (printf "%s-database" $ctx.fullname) }}
      key: {{ required (printf "%s: database.secretKey is required" $ctx.service) $cfg.database.secretKey }}
{{- end }}
{{- if not .migration }}
- name: CRM_DB_POOL_SIZE
  value: {{ $cfg.dbPoolSize | quote }}
- name: CRM_GRPC_HOST
  value: "0.0.0.0"
- name: CRM_GRPC_PORT
  value: {{ include "crm-lib.port.grpc" $ctx | quote }}
{{- include "crm-lib.natsEnv" $ctx }}
- name: CRM_STREAM_REPLICAS
  value: {{ $cfg.streamReplicas | quote }}
{{- end }}
{{- end }}
{{- if has $ctx.service (list "sales" "reporting") }}
- name: CRM_COMPANY_TIME_ZONE
  value: {{ required "company.timeZone is required" $cfg.company.timeZone | quote }}
{{- end }}
{{- if and (eq $ctx.service "reporting") (not .migration) }}
- name: CRM_REPORT_MAIL_DOMAINS
  value: {{ join "," ($cfg.company.mailDomains | default list) | quote }}
{{- with $cfg.reportEngine }}
- name: CRM_REPORT_ENGINE
  value: {{ .engine | quote }}
- name: CRM_REPORT_ENGINE_DIR
  value: {{ include "crm-lib.reportEngineDir" $ctx | quote }}
- name: CRM_REPORT_ENGINE_MEMORY
  value: {{ .memory | quote }}
- name: CRM_REPORT_ENGINE_THREADS
  value: {{ .threads | quote }}
- name: CRM_REPORT_ENGINE_SYNC_SECONDS
  value: {{ .syncSeconds | quote }}
{{- end }}
{{- end }}
{{- if eq $ctx.service "sales" }}
{{- /* Empty keeps the service's own default (a demo name: set company.name in production). */}}
{{- range $key, $env := dict "name" "CRM_COMPANY_NAME" "address" "CRM_COMPANY_ADDRESS" "taxId" "CRM_COMPANY_TAX_ID" "phone" "CRM_COMPANY_PHONE" "email" "CRM_COMPANY_EMAIL" }}
{{- with index $cfg.company $key }}
- name: {{ $env }}
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- if eq $ctx.service "support" }}
- name: CRM_SLA_SCAN_INTERVAL_SECONDS
  value: {{ required "support: slaScanIntervalSeconds is required" $cfg.slaScanIntervalSeconds | quote }}
{{- $store := $cfg.objectStore | default dict }}
{{- /* The bucket and its keys reach the server only: the migration Job never touches it. */}}
{{- if not .migration }}
{{- with $store.url }}
- name: CRM_OBJECT_STORE_URL
  value: {{ . | quote }}
{{- if hasPrefix "s3:" . }}
{{- $secret := required "support: objectStore.existingSecret is required with an s3:// objectStore.url" $store.existingSecret }}
- name: CRM_OBJECT_STORE_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: access-key-id
- name: CRM_OBJECT_STORE_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: secret-access-key
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- if eq $ctx.service "customers" }}
- name: CRM_CONSENT_RULES
  value: {{ required "customers: consentRules is required" $cfg.consentRules | quote }}
{{- end }}
{{- if eq $ctx.service "notifications" }}
- name: CRM_SMS_PROVIDER
  value: {{ $cfg.sms.provider | default "generic" | quote }}
- name: CRM_SMS_BASE_URL
  value: {{ required "notifications: sms.baseUrl is required" $cfg.sms.baseUrl | quote }}
- name: CRM_SMS_SENDER
  value: {{ $cfg.sms.sender | quote }}
- name: CRM_SMS_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $cfg.sms.existingSecret | default (printf "%s-sms" $ctx.fullname) }}
      key: {{ required "notifications: sms.secretKey is required" $cfg.sms.secretKey }}
- name: CRM_SURVEY_BASE_URL
  value: {{ required "notifications: surveyBaseUrl is required (the console's publicUrl)" $cfg.surveyBaseUrl | quote }}
- name: CRM_ADVERTISING_RULES
  value: {{ required "notifications: advertising.rules is required" $cfg.advertising.rules | quote }}
- name: CRM_ADVERTISER_NAME
  value: {{ required "notifications: advertising.advertiserName is required" $cfg.advertising.advertiserName | quote }}
- name: CRM_ADVERTISER_CONTACT
  value: {{ required "notifications: advertising.advertiserContact is required" $cfg.advertising.advertiserContact | quote }}
{{- $promotions := required "notifications: promotions is required" $cfg.promotions }}
- name: CRM_PROMOTION_BATCH_SIZE
  value: {{ $promotions.batchSize | quote }}
- name: CRM_PROMOTION_RATE_PER_SECOND
  value: {{ $promotions.ratePerSecond | quote }}
- name: CRM_PROMOTION_CONCURRENCY
  value: {{ $promotions.concurrency | quote }}
- name: CRM_PROMOTION_APPROVAL_ABOVE
  value: {{ int64 $promotions.approvalAbove | quote }}
- name: CRM_PROMOTION_FREQUENCY_CAP
  value: {{ int64 $promotions.frequencyCap | quote }}
- name: CRM_PROMOTION_FREQUENCY_DAYS
  value: {{ int64 $promotions.frequencyDays | quote }}
- name: CRM_PROMOTION_QUIET_HOURS
  value: {{ $promotions.quietHours | quote }}
- name: CRM_PUBLIC_API_BASE_URL
  value: {{ required "notifications: promotions.publicApiBaseUrl is required (the gateway's publicBaseUrl)" $promotions.publicApiBaseUrl | quote }}
- name: CRM_UNSUBSCRIBE_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $promotions.existingSecret | default (printf "%s-promotions" $ctx.fullname) }}
      key: {{ required "notifications: promotions.secretKey is required" $promotions.secretKey }}
{{- $smtp := $cfg.smtp | default dict }}
{{- if and $smtp.host (not .migration) }}
- name: CRM_SMTP_HOST
  value: {{ $smtp.host | quote }}
- name: CRM_SMTP_PORT
  value: {{ required "notifications: smtp.port is required" $smtp.port | quote }}
- name: CRM_SMTP_SECURITY
  value: {{ $smtp.security | quote }}
- name: CRM_SMTP_FROM_ADDRESS
  value: {{ required "notifications: smtp.fromAddress is required" $smtp.fromAddress | quote }}
{{- with $smtp.fromName }}
- name: CRM_SMTP_FROM_NAME
  value: {{ . | quote }}
{{- end }}
{{- with $smtp.username }}
{{- if eq $smtp.security "none" }}
{{- fail "notifications: smtp.username with smtp.security none would send the password in clear" }}
{{- end }}
- name: CRM_SMTP_USERNAME
  value: {{ . | quote }}
- name: CRM_SMTP_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $smtp.existingSecret | default (printf "%s-smtp" $ctx.fullname) }}
      key: {{ required "notifications: smtp.secretKey is required" $smtp.secretKey }}
{{- end }}
{{- end }}
{{- end }}
{{- if eq $ctx.flow.kind "gateway" }}
{{- /* The gateway's Idempotency-Key store is a JetStream bucket its replicas share. */}}
{{- include "crm-lib.natsEnv" $ctx }}
- name: CRM_STREAM_REPLICAS
  value: {{ $cfg.streamReplicas | quote }}
- name: CRM_HTTP_HOST
  value: "0.0.0.0"
- name: CRM_HTTP_PORT
  value: {{ include "crm-lib.port.http" $ctx | quote }}
- name: CRM_AUTH_ISSUER
  value: {{ required "gateway: auth.issuer is required" $cfg.auth.issuer | quote }}
- name: CRM_AUTH_JWKS_URL
  value: {{ required "gateway: auth.jwksUrl is required" $cfg.auth.jwksUrl | quote }}
- name: CRM_AUTH_AUDIENCE
  value: {{ $cfg.auth.audience | quote }}
- name: CRM_PUBLIC_BASE_URL
  value: {{ required "gateway: publicBaseUrl is required" $cfg.publicBaseUrl | quote }}
- name: CRM_SMS_CALLBACK_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $cfg.smsCallbacks.existingSecret | default (printf "%s-sms-callbacks" $ctx.fullname) }}
      key: {{ required "gateway: smsCallbacks.secretKey is required" $cfg.smsCallbacks.secretKey }}
- name: CRM_CORS_ALLOW_ORIGINS
  value: {{ $cfg.corsAllowOrigins | default list | toJson | quote }}
- name: CRM_HSTS
  value: {{ $cfg.hsts | default false | quote }}
- name: CRM_TRUSTED_PROXIES
  value: {{ $cfg.trustedProxies | default list | toJson | quote }}
- name: CRM_API_DOCS
  value: {{ $cfg.apiDocs | default false | quote }}
- name: CRM_MAX_BODY_BYTES
  value: {{ int64 (required "gateway: maxBodyBytes is required" $cfg.maxBodyBytes) | quote }}
- name: CRM_LEAD_IMPORT_MAX_BYTES
  value: {{ int64 (required "gateway: leadImportMaxBytes is required" $cfg.leadImportMaxBytes) | quote }}
{{- end }}
{{- if eq $ctx.service "console" }}
{{- include "crm-lib.consoleEnv" $ctx }}
{{- end }}
{{- if and $ctx.chassis $cfg.grpcTls.enabled (not .migration) }}
- name: CRM_GRPC_TLS_CERT_FILE
  value: {{ printf "%s/%s" (include "crm-lib.tlsDir" $ctx) $cfg.grpcTls.certKey | quote }}
- name: CRM_GRPC_TLS_KEY_FILE
  value: {{ printf "%s/%s" (include "crm-lib.tlsDir" $ctx) $cfg.grpcTls.keyKey | quote }}
{{- with $cfg.grpcTls.caKey }}
- name: CRM_GRPC_TLS_CA_FILE
  value: {{ printf "%s/%s" (include "crm-lib.tlsDir" $ctx) . | quote }}
{{- end }}
{{- if and $cfg.grpcTls.caKey (eq $ctx.flow.kind "backend") }}
- name: CRM_GRPC_ALLOWED_CLIENT_NAMES
  value: {{ include "crm-lib.allowedClientNames" $ctx | quote }}
{{- end }}
{{- end }}
{{- range $cfg.extraEnv }}
- name: {{ .name }}
  value: {{ .value | quote }}
{{- end }}
{{- end -}}

{{/*
crm-lib.consoleEnv (ctx): the console's own settings (CRM_CONSOLE_*). It calls the gateway's
Service (the NetworkPolicy allows exactly that flow) and the OIDC issuer; its session key (the
AES-GCM key sealing the cookie that holds the user's token) comes only from an existing Secret.
Production is refused here as the console refuses it: cookies not marked Secure, or a public
address that is not https (a Secure cookie is never sent back over http).
*/}}
{{- define "crm-lib.consoleEnv" -}}
{{- $cfg := .cfg -}}
{{- $publicUrl := required "console: publicUrl is required" $cfg.publicUrl -}}
{{- $issuer := required "console: oidc.issuerUrl is required" $cfg.oidc.issuerUrl -}}
{{- if eq $cfg.environment "production" -}}
{{- if not $cfg.secureCookies -}}
{{- fail "console: production needs secureCookies=true (the session cookie holds the user's token: https only)" -}}
{{- end -}}
{{- if not (hasPrefix "https://" $publicUrl) -}}
{{- fail (printf "console: production serves the console over https (its cookies are Secure), not %q" $publicUrl) -}}
{{- end -}}
{{- end -}}
{{- $gateway := dict "flow" (get .flows "gateway") -}}
{{- $session := $cfg.sessionKeySecret | default dict }}
- name: CRM_CONSOLE_HTTP_HOST
  value: "0.0.0.0"
- name: CRM_CONSOLE_HTTP_PORT
  value: {{ include "crm-lib.port.http" . | quote }}
- name: CRM_CONSOLE_GATEWAY_URL
  value: {{ $cfg.gatewayUrl | default (printf "http://%s:%s" (include "crm-lib.peerName" (dict "ctx" . "peer" "gateway")) (include "crm-lib.port.http" $gateway)) | quote }}
- name: CRM_CONSOLE_PUBLIC_URL
  value: {{ $publicUrl | quote }}
{{- if $cfg.publicGatewayUrl }}
- name: CRM_CONSOLE_PUBLIC_GATEWAY_URL
  value: {{ $cfg.publicGatewayUrl | quote }}
{{- end }}
- name: CRM_CONSOLE_OIDC_ISSUER_URL
  value: {{ $issuer | quote }}
- name: CRM_CONSOLE_OIDC_BROWSER_ISSUER_URL
  value: {{ $cfg.oidc.browserIssuerUrl | default $issuer | quote }}
- name: CRM_CONSOLE_OIDC_CLIENT_ID
  value: {{ required "console: oidc.clientId is required" $cfg.oidc.clientId | quote }}
- name: CRM_CONSOLE_SECURE_COOKIES
  value: {{ $cfg.secureCookies | default false | quote }}
- name: CRM_CONSOLE_SESSION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $session.name | default (printf "%s-session" .fullname) }}
      key: {{ required "console: sessionKeySecret.key is required" $session.key }}
{{- end -}}

{{/*
crm-lib.probes: gateway and console over HTTP (/healthz live, /readyz ready: the gateway serving —
a backend down fails only the routes that need it —, for the console the gateway answering).
Backends over gRPC health: readiness asks service "" (NOT_SERVING while the service's own
PostgreSQL does not answer), startup and liveness ask service "liveness" (SERVING while the process
serves: a database outage takes the pod out of its Service, it never restarts it). The
kubelet's native grpc probe when the port is plaintext. The kubelet's gRPC probe cannot do TLS
(Kubernetes 1.33), so with grpcTls on the same health check runs as an exec probe in the image's
Python, with the pod's own certificate, verifying the server against the CA under its Service
name (the name every client uses).
*/}}
{{- define "crm-lib.probeAction" -}}
{{- $ctx := .ctx -}}
{{- if $ctx.http }}
httpGet:
  path: {{ .path }}
  port: http
{{- else if $ctx.cfg.grpcTls.enabled }}
exec:
  command:
    - python
    - -c
    - |-
      import os, sys, grpc
      from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g
      def pem(var):
          path = os.environ.get(var, "")
          return open(path, "rb").read() if path else None
      creds = grpc.ssl_channel_credentials(pem("CRM_GRPC_TLS_CA_FILE"), pem("CRM_GRPC_TLS_KEY_FILE"), pem("CRM_GRPC_TLS_CERT_FILE"))
      with grpc.secure_channel("127.0.0.1:" + os.environ["CRM_GRPC_PORT"], creds, options=[("grpc.ssl_target_name_override", sys.argv[1])]) as channel:
          status = g.HealthStub(channel).Check(h.HealthCheckRequest(service=sys.argv[3]), timeout=float(sys.argv[2])).status
      sys.exit(0 if status == h.HealthCheckResponse.SERVING else 1)
    - {{ $ctx.fullname | quote }}
    - {{ .probe.timeoutSeconds | quote }}
    - {{ .health | quote }}
{{- else }}
grpc:
  port: {{ include "crm-lib.port.grpc" $ctx }}
  service: {{ .health | quote }}
{{- end }}
{{- end -}}

{{- define "crm-lib.probes" -}}
{{- $ctx := . -}}
{{- $p := $ctx.cfg.probes -}}
{{- $tlsExec := and (not $ctx.http) $ctx.cfg.grpcTls.enabled -}}
{{- range $name, $path := dict "startup" "/healthz" "readiness" "/readyz" "liveness" "/healthz" }}
{{ $name }}Probe:
  {{- $health := ternary "" "liveness" (eq $name "readiness") }}
  {{- include "crm-lib.probeAction" (dict "ctx" $ctx "path" $path "health" $health "probe" (get $p $name)) | trim | nindent 2 }}
  periodSeconds: {{ (get $p $name).periodSeconds }}
  {{- /* an exec probe starts a Python: give it a second more than the RPC's own timeout */}}
  timeoutSeconds: {{ ternary (add1 (get $p $name).timeoutSeconds) (get $p $name).timeoutSeconds $tlsExec }}
  failureThreshold: {{ (get $p $name).failureThreshold }}
  successThreshold: 1
{{- end }}
{{- end -}}
