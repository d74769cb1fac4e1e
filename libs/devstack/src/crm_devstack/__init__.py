"""Local development stack of the CRM: embedded servers, fakes, launcher and pytest fixtures.

Import from the submodules (``crm_devstack.postgres``, ``crm_devstack.nats``,
``crm_devstack.stack``, ``crm_devstack.sms_provider``) so that loading the pytest
plugin stays cheap.
"""
