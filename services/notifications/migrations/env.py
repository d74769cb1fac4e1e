from crm_kit.migrations import run_env
from crm_notifications.db import metadata

run_env(metadata)
