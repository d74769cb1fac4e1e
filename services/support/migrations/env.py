from crm_kit.migrations import run_env
from crm_support.db import metadata

run_env(metadata)
