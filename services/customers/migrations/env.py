from crm_customers.db import metadata
from crm_kit.migrations import run_env

run_env(metadata)
