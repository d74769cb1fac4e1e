"""Writes the values.schema.json of every CRM chart from this one description, so the nine service
charts and the umbrella validate the shared global.components block the same way (and crm-nats
its network peers as they do).

    python deploy/helm/schemas.py          # write
    python deploy/helm/schemas.py --check  # exit 1 if a file differs (tests/deploy/test_helm.py)
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HELM = Path(__file__).resolve().parent
DRAFT = "http://json-schema.org/draft-07/schema#"

BACKENDS = ("leads", "sales", "customers", "orders", "support", "notifications", "reporting")
SERVICES = ("gateway", "console", *BACKENDS)
CALLS = {"gateway": BACKENDS, "notifications": ("customers",)}

Schema = dict[str, Any]


def obj(properties: Schema, required: tuple[str, ...] = (), *, closed: bool = True, **extra: Any) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return {**schema, **extra}


STRING: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}
PORT: Schema = {"type": "integer", "minimum": 1, "maximum": 65535}
QUANTITY: Schema = {"type": ["string", "number"]}
STRING_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
HTTPS_URL: Schema = {"type": "string", "pattern": "^https://[^\\s]+$"}
HTTP_URL: Schema = {"type": "string", "pattern": "^https?://[^\\s]+$"}
LABEL_SELECTOR: Schema = obj(
    {
        "matchLabels": STRING_MAP,
        "matchExpressions": {"type": "array", "items": {"type": "object"}},
    }
)
# A NetworkPolicyPeer. Lists of them must not be empty where used: [] means "everyone".
PEERS: Schema = {
    "type": "array",
    "items": obj(
        {
            "podSelector": LABEL_SELECTOR,
            "namespaceSelector": LABEL_SELECTOR,
            "ipBlock": obj(
                {"cidr": STRING, "except": {"type": "array", "items": STRING}},
                ("cidr",),
            ),
        },
        minProperties=1,
    ),
}
PROBE: Schema = obj(
    {
        "periodSeconds": {"type": "integer", "minimum": 1},
        "timeoutSeconds": {"type": "integer", "minimum": 1},
        "failureThreshold": {"type": "integer", "minimum": 1},
    },
    ("periodSeconds", "timeoutSeconds", "failureThreshold"),
)


def components() -> Schema:
    """global.components: every key required there (the charts' values.yaml define them all)."""
    return obj(
        {
            "system": {"type": "string", "pattern": "^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$"},
            "environment": {"enum": ["development", "test", "production"]},
            "logLevel": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]},
            "accessLog": {"enum": ["failures", "all"]},
            "company": obj(
                {
                    "name": {"type": "string", "maxLength": 200},
                    "address": {"type": "string", "maxLength": 400},
                    "taxId": {"type": "string", "maxLength": 40},
                    "phone": {"type": "string", "maxLength": 40},
                    "email": {"type": "string", "maxLength": 200},
                    "timeZone": {"type": "string", "pattern": "^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$"},
                    "mailDomains": {
                        "type": "array",
                        "maxItems": 20,
                        "items": {"type": "string", "pattern": "^[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+$"},
                    },
                },
                ("name", "address", "taxId", "phone", "email", "timeZone"),
                description=(
                    "the company: details printed on quotes (sales), its calendar (sales, reporting), the mail "
                    "domains scheduled reports may go to (reporting; none: scheduling is refused)"
                ),
            ),
            "image": obj(
                {
                    "registry": STRING,
                    "repository": {"type": "string", "minLength": 1},
                    "tag": {"type": "string", "not": {"const": "latest"}},
                    "pullPolicy": {"enum": ["IfNotPresent", "Always"]},
                },
                ("registry", "tag", "pullPolicy"),
            ),
            "imagePullSecrets": {"type": "array", "items": obj({"name": STRING}, ("name",))},
            "replicaCount": {"type": "integer", "minimum": 1},
            "resources": obj(
                {
                    "requests": obj({"cpu": QUANTITY, "memory": QUANTITY}, ("cpu", "memory")),
                    "limits": obj({"cpu": QUANTITY, "memory": QUANTITY, "ephemeral-storage": QUANTITY}, ("memory",)),
                },
                ("requests", "limits"),
            ),
            "podSecurity": obj(
                {
                    "runAsUser": {"type": "integer", "minimum": 1000},
                    "runAsGroup": {"type": "integer", "minimum": 1000},
                    "fsGroup": {"type": "integer", "minimum": 1000},
                },
                ("runAsUser", "runAsGroup", "fsGroup"),
            ),
            "tmpSizeLimit": QUANTITY,
            "shutdownGraceSeconds": {"type": "number", "minimum": 0},
            "dbPoolSize": {"type": "integer", "minimum": 1, "maximum": 100},
            "preStopSleepSeconds": {"type": "integer", "minimum": 0},
            "probes": obj(
                {"startup": PROBE, "readiness": PROBE, "liveness": PROBE},
                ("startup", "readiness", "liveness"),
            ),
            "autoscaling": obj(
                {
                    "enabled": BOOL,
                    "minReplicas": {"type": "integer", "minimum": 1},
                    "maxReplicas": {"type": "integer", "minimum": 1},
                    "targetCPUUtilizationPercentage": {"type": "integer", "minimum": 1, "maximum": 100},
                    "consumerLag": obj(
                        {
                            "enabled": BOOL,
                            "natsMonitoringEndpoint": {"type": "string", "pattern": "^([^\\s:/]+:[0-9]+)?$"},
                            "account": {"type": "string", "minLength": 1},
                            "useHttps": BOOL,
                            "lagThreshold": {"type": "integer", "minimum": 1},
                            "activationLagThreshold": {"type": "integer", "minimum": 0},
                            "pollingInterval": {"type": "integer", "minimum": 1},
                        },
                        (
                            "enabled", "natsMonitoringEndpoint", "account", "useHttps", "lagThreshold",
                            "activationLagThreshold", "pollingInterval",
                        ),
                    ),
                },
                ("enabled", "minReplicas", "maxReplicas", "targetCPUUtilizationPercentage", "consumerLag"),
            ),
            "podDisruptionBudget": obj(
                {
                    "enabled": BOOL,
                    "minAvailable": {"type": ["integer", "string"], "pattern": "^[0-9]+%$", "minimum": 1},
                },
                ("enabled", "minAvailable"),
            ),
            "topologySpread": obj(
                {
                    "enabled": BOOL,
                    "maxSkew": {"type": "integer", "minimum": 1},
                    "whenUnsatisfiable": {"enum": ["ScheduleAnyway", "DoNotSchedule"]},
                },
                ("enabled", "maxSkew", "whenUnsatisfiable"),
            ),
            "podAnnotations": STRING_MAP,
            "podLabels": STRING_MAP,
            "nodeSelector": STRING_MAP,
            "tolerations": {"type": "array", "items": {"type": "object"}},
            "affinity": {"type": "object"},
            "priorityClassName": STRING,
            "extraEnv": {
                "type": "array",
                "items": obj(
                    {"name": {"type": "string", "pattern": "^[A-Z_][A-Z0-9_]*$"}, "value": STRING},
                    ("name", "value"),
                ),
            },
            "streamReplicas": {"type": "integer", "minimum": 1, "maximum": 5},
            "nats": obj(
                {
                    "url": {"type": "string", "pattern": "^(nats|tls)://"},
                    "port": PORT,
                    "auth": obj(
                        {
                            "enabled": BOOL,
                            "existingSecret": STRING,
                            "userKey": {"type": "string", "minLength": 1},
                            "passwordKey": {"type": "string", "minLength": 1},
                        },
                        ("enabled", "existingSecret", "userKey", "passwordKey"),
                    ),
                    "tls": obj(
                        {
                            "enabled": BOOL,
                            "existingSecret": STRING,
                            "caKey": STRING,
                            "certKey": STRING,
                            "keyKey": STRING,
                            "serviceMesh": BOOL,
                        },
                        ("enabled", "existingSecret", "caKey", "certKey", "keyKey", "serviceMesh"),
                    ),
                    "networkPeers": PEERS,
                },
                ("url", "port", "auth", "tls", "networkPeers"),
            ),
            "otlp": obj(
                {"endpoint": STRING, "port": PORT, "networkPeers": PEERS},
                ("endpoint", "port", "networkPeers"),
            ),
            "grpcTls": obj(
                {
                    "enabled": BOOL,
                    "existingSecret": STRING,
                    "certKey": {"type": "string", "minLength": 1},
                    "keyKey": {"type": "string", "minLength": 1},
                    "caKey": STRING,
                    "extraClientNames": {"type": "array", "items": {"type": "string", "minLength": 1}},
                },
                ("enabled", "existingSecret", "certKey", "keyKey", "caKey", "extraClientNames"),
            ),
            "networkPolicy": obj(
                {
                    "enabled": BOOL,
                    "dns": obj({"peers": PEERS}, ("peers",)),
                    "ingressController": obj({"peers": PEERS}, ("peers",)),
                    "monitoring": obj({"peers": PEERS}, ("peers",)),
                },
                ("enabled", "dns", "ingressController", "monitoring"),
            ),
            "migration": obj(
                {
                    "backoffLimit": {"type": "integer", "minimum": 0},
                    "activeDeadlineSeconds": {"type": "integer", "minimum": 30},
                },
                ("backoffLimit", "activeDeadlineSeconds"),
            ),
        },
        (
            "system", "environment", "logLevel", "accessLog", "company", "image", "imagePullSecrets", "replicaCount",
            "resources", "podSecurity", "tmpSizeLimit", "shutdownGraceSeconds", "dbPoolSize", "preStopSleepSeconds",
            "probes",
            "autoscaling", "podDisruptionBudget", "topologySpread", "streamReplicas", "nats", "otlp",
            "grpcTls", "networkPolicy", "migration",
        ),
    )  # fmt: skip


def without_required(schema: Schema) -> Schema:
    """The same shape with nothing required: a service overrides only what it names. Inside
    NetworkPolicyPeers (ipBlock.cidr) and list items the requirements stay."""
    out = copy.deepcopy(schema)
    out.pop("required", None)
    for name, prop in out.get("properties", {}).items():
        if prop.get("type") == "object" and "properties" in prop:
            out["properties"][name] = without_required(prop)
    return out


SERVICE_MONITOR: Schema = obj(
    {
        "serviceMonitor": obj(
            {
                "enabled": BOOL,
                "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                "labels": STRING_MAP,
            },
            ("enabled",),
        )
    },
    ("serviceMonitor",),
)


# A public entry point (the gateway, the console): crm-lib/templates/_ingress.tpl.
INGRESS: Schema = obj(
    {
        "enabled": BOOL,
        "className": STRING,
        "annotations": STRING_MAP,
        "hosts": {
            "type": "array",
            "items": obj(
                {
                    "host": {"type": "string", "minLength": 1},
                    "paths": {
                        "type": "array",
                        "items": obj(
                            {
                                "path": STRING,
                                "pathType": {"enum": ["Prefix", "Exact", "ImplementationSpecific"]},
                            },
                            ("path",),
                        ),
                    },
                },
                ("host",),
            ),
        },
        "tls": {
            "type": "array",
            "items": obj({"secretName": STRING, "hosts": {"type": "array", "items": STRING}}),
        },
    },
    ("enabled",),
)


HTTP_ROUTE: Schema = obj(
    {
        "enabled": BOOL,
        "annotations": STRING_MAP,
        "parentRefs": {
            "type": "array",
            "items": obj(
                {
                    "name": {"type": "string", "minLength": 1},
                    "namespace": STRING,
                    "sectionName": STRING,
                    "port": PORT,
                    "group": STRING,
                    "kind": STRING,
                },
                ("name",),
            ),
        },
        "hostnames": {"type": "array", "items": {"type": "string", "pattern": "^(\\*\\.)?[a-z0-9.-]+$"}},
    },
    ("enabled", "parentRefs", "hostnames"),
    description="a Gateway API HTTPRoute to the public listener (beside or instead of the Ingress)",
)


def database(description: str) -> Schema:
    return obj(
        {
            "existingSecret": STRING,
            "secretKey": {"type": "string", "minLength": 1},
            "port": PORT,
            "cnpgCluster": STRING,
            "networkPeers": PEERS,
            "maxConnections": {"type": "integer", "minimum": 1},
            "cloudnativepg": cloudnativepg(),
        },
        ("existingSecret", "secretKey", "port"),
        description=description,
    )


def cloudnativepg() -> Schema:
    """A backend's database made by the crm-databases chart (CloudNativePG), read from its Secret."""
    return obj(
        {
            "enabled": BOOL,
            "pooler": BOOL,
            "poolerMaxClientConnections": {"type": "integer", "minimum": 1},
        },
        ("enabled", "pooler", "poolerMaxClientConnections"),
    )


def one_off_job(description: str) -> Schema:
    """An opt-in hook Job of the upgrade to sales (crm-lib/templates/_dealcopy.tpl)."""
    return obj(
        {
            "enabled": BOOL,
            "backoffLimit": {"type": "integer", "minimum": 0},
            "activeDeadlineSeconds": {"type": "integer", "minimum": 30},
        },
        ("enabled", "backoffLimit", "activeDeadlineSeconds"),
        description=description,
    )


def notifications_values() -> Schema:
    """notifications' own keys: the SMS provider, the survey link's base and the SMTP relay."""
    props: Schema = {}
    props["sms"] = obj(
        {
            "provider": {"enum": ["generic", "kavenegar"], "description": "CRM_SMS_PROVIDER: which API it speaks"},
            "baseUrl": {"type": "string", "pattern": "^https?://[^\\s]+$"},
            "sender": {"type": "string", "minLength": 1},
            "existingSecret": STRING,
            "secretKey": {"type": "string", "minLength": 1},
            "port": PORT,
            "networkPeers": PEERS,
        },
        ("provider", "baseUrl", "sender", "existingSecret", "secretKey", "port", "networkPeers"),
        description="the SMS provider; its API key only by reference",
    )
    props["promotions"] = obj(
        {
            "batchSize": {"type": "integer", "minimum": 1, "maximum": 5000, "description": "CRM_PROMOTION_BATCH_SIZE"},
            "ratePerSecond": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": 10000,
                "description": "CRM_PROMOTION_RATE_PER_SECOND: sends started a second (the provider's limit)",
            },
            "concurrency": {"type": "integer", "minimum": 1, "maximum": 64, "description": "CRM_PROMOTION_CONCURRENCY"},
            "approvalAbove": {
                "type": "integer",
                "minimum": 0,
                "description": "CRM_PROMOTION_APPROVAL_ABOVE: a larger audience waits for a manager's approval",
            },
            "publicApiBaseUrl": {
                "type": "string",
                "pattern": "^https?://[^\\s]+$",
                "description": "CRM_PUBLIC_API_BASE_URL: the gateway's public URL (one-click unsubscribe)",
            },
            "frequencyCap": {
                "type": "integer",
                "minimum": 0,
                "maximum": 100,
                "description": "CRM_PROMOTION_FREQUENCY_CAP: promotions per person and channel (0: no cap)",
            },
            "frequencyDays": {"type": "integer", "minimum": 1, "maximum": 365, "description": "…within these days"},
            "quietHours": {
                "type": "string",
                "pattern": "^([0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9])?$",
                "description": "CRM_PROMOTION_QUIET_HOURS: no batch starts in it (company time; empty: none)",
            },
            "existingSecret": STRING,
            "secretKey": {"type": "string", "minLength": 1},
        },
        (
            "batchSize",
            "ratePerSecond",
            "concurrency",
            "approvalAbove",
            "publicApiBaseUrl",
            "existingSecret",
            "secretKey",
        ),
        description="promotions: batches, the provider's rate, approval, and the unsubscribe links' signing secret",
    )
    props["surveyBaseUrl"] = {
        "type": "string",
        "pattern": "^https?://[^\\s]+$",
        "description": "CRM_SURVEY_BASE_URL: where a survey's link points (the console's publicUrl)",
    }
    props["advertising"] = obj(
        {
            "rules": {"enum": ["IL", "IR"], "description": "CRM_ADVERTISING_RULES: whose advertising law applies"},
            "advertiserName": {"type": "string", "minLength": 1, "description": "CRM_ADVERTISER_NAME"},
            "advertiserContact": {"type": "string", "minLength": 1, "description": "CRM_ADVERTISER_CONTACT"},
        },
        ("rules", "advertiserName", "advertiserContact"),
        description="what an advertising message must carry, and who the advertiser is",
    )
    props["smtp"] = obj(
        {
            "host": {"type": "string", "pattern": "^[^\\s:/]*$", "description": "empty: no e-mail"},
            "port": PORT,
            "security": {"enum": ["starttls", "tls", "none"]},
            "username": STRING,
            "existingSecret": STRING,
            "secretKey": {"type": "string", "minLength": 1},
            "fromAddress": {"type": "string", "pattern": "^[^\\s@]+@[^\\s@]+$"},
            "fromName": STRING,
            "networkPeers": PEERS,
        },
        (
            "host",
            "port",
            "security",
            "username",
            "existingSecret",
            "secretKey",
            "fromAddress",
            "fromName",
            "networkPeers",
        ),
        description="the SMTP relay e-mail goes through; its password only by reference",
    )
    return props


def report_engine() -> Schema:
    """reporting's builder engine (crm_reporting.replica): CRM_REPORT_ENGINE*, and the copy's volume."""
    return obj(
        {
            "engine": {
                "enum": ["duckdb", "postgresql"],
                "description": "CRM_REPORT_ENGINE: the report builder reads an embedded DuckDB copy of the "
                "fact tables (duckdb) or PostgreSQL",
            },
            "memory": {
                "type": "string",
                "pattern": "^[1-9][0-9]*(MB|GB)$",
                "description": "CRM_REPORT_ENGINE_MEMORY: DuckDB's memory_limit, inside the pod's memory limit",
            },
            "threads": {"type": "integer", "minimum": 1, "description": "CRM_REPORT_ENGINE_THREADS"},
            "syncSeconds": {
                "type": "number",
                "exclusiveMinimum": 0,
                "description": "CRM_REPORT_ENGINE_SYNC_SECONDS: how often the copy catches up between reports",
            },
            "volumeSizeLimit": {
                "type": "string",
                "pattern": "^[1-9][0-9]*(Mi|Gi)$",
                "description": "the copy's emptyDir (its file and one page of rows in transit)",
            },
        },
        ("engine", "memory", "threads", "syncSeconds", "volumeSizeLimit"),
        description="the report builder's engine (crm_reporting.replica)",
    )


def support_values() -> Schema:
    """support's own settings: the SLA scan's period and the attachments' object store."""
    return {
        "slaScanIntervalSeconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "CRM_SLA_SCAN_INTERVAL_SECONDS: seconds between two passes of the SLA escalation scan",
        },
        "objectStore": obj(
            {
                "url": {
                    "type": "string",
                    "pattern": "^$|^(file:///|s3://)[^\\s]+$",
                    "description": "CRM_OBJECT_STORE_URL: where attachments are kept (empty: attachments off)",
                },
                "existingSecret": {
                    "type": "string",
                    "description": "the Secret with access-key-id and secret-access-key (required for s3://)",
                },
                "port": PORT,
                "networkPeers": PEERS,
            },
            ("url", "existingSecret", "port", "networkPeers"),
        ),
    }


def customers_values() -> Schema:
    return {
        "consentRules": {
            "enum": ["IL", "IR"],
            "description": "CRM_CONSENT_RULES: the country whose consent rules hold",
        }
    }


# Each service's own settings beyond the chassis' (every one required).
OWN_VALUES: dict[str, Callable[[], Schema]] = {
    "support": support_values,
    "customers": customers_values,
    "notifications": notifications_values,
    "reporting": lambda: {"reportEngine": report_engine()},
}


def service(name: str) -> Schema:
    overrides = without_required(components())
    props: Schema = {
        "enabled": {"type": "boolean", "description": "the umbrella chart's switch for this service"},
        "crm-lib": {"type": "object", "description": "the library chart's (empty) values"},
        "fullnameOverride": {"type": "string", "maxLength": 63},
        **overrides["properties"],
        "monitoring": SERVICE_MONITOR,
        "global": obj({"components": components()}, ("components",), closed=False),
    }
    # The repository and a digest are the service's own (a digest names one image).
    image = copy.deepcopy(props["image"])
    image["properties"]["digest"] = {"type": "string", "pattern": "^(sha256:[a-f0-9]{64})?$"}
    props["image"] = {**image, "required": ["repository"]}
    required = ["image", "monitoring", "global"]
    if name in CALLS:
        props["addresses"] = obj({callee: {"type": "string", "pattern": "^[^\\s:]+:[0-9]+$"} for callee in CALLS[name]})
    if name in BACKENDS:
        props["database"] = database("the database URL only by reference: a Secret and its key")
        required.append("database")
    if name == "leads":
        props["recordLegacyConversions"] = one_off_job(
            "the one-off recording of the conversions of old-table deals (a post-install/upgrade hook Job "
            "that runs before sales' copyDealsFromLeads)"
        )
        required.append("recordLegacyConversions")
    if name == "sales":
        props["copyDealsFromLeads"] = one_off_job(
            "the one-off copy of the deals made before sales existed (a post-install/upgrade hook Job)"
        )
        props["legacyLeadsDatabase"] = database("the leads database the deal copy reads, only by reference")
        required += ["copyDealsFromLeads", "legacyLeadsDatabase"]
    if name in OWN_VALUES:
        own = OWN_VALUES[name]()
        props.update(own)
        required += list(own)
    if name == "gateway":
        props["auth"] = obj(
            {
                "issuer": HTTPS_URL,
                "audience": {"type": "string", "minLength": 1},
                "jwksUrl": HTTPS_URL,
                "port": PORT,
                "networkPeers": PEERS,
            },
            ("issuer", "audience", "jwksUrl", "port", "networkPeers"),
        )
        props["publicBaseUrl"] = {"type": "string", "pattern": "^https?://[^\\s]+$"}
        props["smsCallbacks"] = obj(
            {"existingSecret": STRING, "secretKey": {"type": "string", "minLength": 1}},
            ("existingSecret", "secretKey"),
            description="the secret the SMS provider signs receipts and replies with, only by reference",
        )
        props["corsAllowOrigins"] = {"type": "array", "items": {"type": "string", "pattern": "^https?://[^\\s/]+$"}}
        props["hsts"] = BOOL
        # IPv4 or IPv6 CIDRs (or single addresses); the gateway refuses host bits at startup.
        props["trustedProxies"] = {
            "type": "array",
            "items": {"type": "string", "pattern": r"^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$"},
        }
        props["apiDocs"] = BOOL
        props["maxBodyBytes"] = {"type": "integer", "minimum": 1}
        props["leadImportMaxBytes"] = {"type": "integer", "minimum": 1}
        props["ingress"] = INGRESS
        props["httpRoute"] = HTTP_ROUTE
        required += ["auth", "publicBaseUrl", "ingress", "smsCallbacks"]
    if name == "console":
        props["publicUrl"] = HTTP_URL
        # Empty: the gateway's Service, http://<system>-gateway:8080.
        props["gatewayUrl"] = {"type": "string", "pattern": "^(https?://[^\\s]+)?$"}
        props["publicGatewayUrl"] = {"type": "string", "pattern": "^(https?://[^\\s]+)?$"}
        props["oidc"] = obj(
            {
                "issuerUrl": HTTP_URL,
                "browserIssuerUrl": {"type": "string", "pattern": "^(https?://[^\\s]+)?$"},
                "clientId": {"type": "string", "minLength": 1},
                "port": PORT,
                "networkPeers": PEERS,
            },
            ("issuerUrl", "clientId", "port", "networkPeers"),
        )
        props["sessionKeySecret"] = obj(
            {"name": STRING, "key": {"type": "string", "minLength": 1}},
            ("name", "key"),
            description="the session key only by reference: an existing Secret and its key",
        )
        props["secureCookies"] = BOOL
        props["ingress"] = INGRESS
        props["httpRoute"] = HTTP_ROUTE
        required += ["publicUrl", "oidc", "sessionKeySecret", "secureCookies", "ingress"]
    return {"$schema": DRAFT, "title": f"CRM {name} chart values", **obj(props, tuple(required))}


def umbrella() -> Schema:
    # One switch for ServiceMonitors, the umbrella's monitoring.serviceMonitor: a service's own
    # stays off here (it would be a second ServiceMonitor of the same name).
    own_monitor_off = {"properties": {"serviceMonitor": {"properties": {"enabled": {"const": False}}}}}
    subchart = {"type": "object", "properties": {"enabled": BOOL, "monitoring": own_monitor_off}}
    # The blocks read by templates/prometheusrule.yaml and grafana-dashboards.yaml stay open.
    monitoring = obj(
        {
            "serviceMonitor": SERVICE_MONITOR["properties"]["serviceMonitor"],
            "prometheusRule": obj(
                {
                    "enabled": BOOL,
                    "labels": STRING_MAP,
                    "runbookBaseUrl": {"type": "string", "pattern": "^https?://[^\\s#]+$"},
                    "ruleLabels": STRING_MAP,
                },
                ("enabled",),
                closed=False,
            ),
            "dashboards": obj(
                {
                    "enabled": BOOL,
                    "labels": STRING_MAP,
                    "annotations": STRING_MAP,
                    "uidSuffix": {"type": "string", "pattern": "^[a-z0-9-]{0,12}$"},
                },
                ("enabled",),
                closed=False,
            ),
        },
        ("serviceMonitor", "prometheusRule", "dashboards"),
    )
    props: Schema = {name: subchart for name in SERVICES}
    props["crm-lib"] = {"type": "object"}
    props["monitoring"] = monitoring
    props["natsProvisioning"] = obj(
        {
            "enabled": BOOL,
            "existingSecret": STRING,
            "userKey": {"type": "string", "minLength": 1},
            "passwordKey": {"type": "string", "minLength": 1},
            "tlsExistingSecret": STRING,
            "backoffLimit": {"type": "integer", "minimum": 0},
            "activeDeadlineSeconds": {"type": "integer", "minimum": 1},
        },
        ("enabled", "existingSecret", "userKey", "passwordKey", "tlsExistingSecret", "backoffLimit"),
    )
    props["global"] = obj({"components": components()}, ("components",), closed=False)
    return {
        "$schema": DRAFT,
        "title": "CRM umbrella chart values",
        **obj(props, ("monitoring", "natsProvisioning", "global")),
    }


def nats_chart() -> Schema:
    """crm-nats: its own keys closed, the official NATS chart's (`nats:`) open (it has no schema)."""
    non_empty_peers = {**PEERS, "minItems": 1}
    return {
        "$schema": DRAFT,
        **obj(
            {
                "system": {"type": "string", "pattern": "^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$"},
                "clientNamespaces": {
                    "type": "array",
                    "items": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"},
                },
                "networkPolicy": obj({"enabled": BOOL, "dnsPeers": non_empty_peers, "monitoringPeers": PEERS}),
                "nats": {
                    "type": "object",
                    "description": "the official NATS chart's values (deploy/helm/vendor/nats/values.yaml)",
                },
            },
            ("system", "networkPolicy", "nats"),
        ),
    }


def schemas() -> dict[Path, Schema]:
    out = {HELM / name / "values.schema.json": service(name) for name in SERVICES}
    out[HELM / "crm" / "values.schema.json"] = umbrella()
    out[HELM / "crm-nats" / "values.schema.json"] = nats_chart()
    return out


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, schema in schemas().items():
        text = json.dumps(schema, indent=2) + "\n"
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        else:
            path.write_text(text)
    if stale:
        names = ", ".join(str(p.relative_to(HELM)) for p in stale)
        print(f"stale: {names}; run python deploy/helm/schemas.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
