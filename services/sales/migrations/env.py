from crm_kit.migrations import run_env
from crm_sales.db import metadata

run_env(metadata)
