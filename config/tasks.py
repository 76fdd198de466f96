"""Modules that declare Dramatiq actors; workers import all of them."""

TASK_MODULES = [
    "apps.accounts.tasks",
    "apps.audit.tasks",
    "apps.exports.tasks",
    "apps.imports.tasks",
    "apps.notifications.tasks",
    "apps.publishing.tasks",
    "apps.team.tasks",
    "apps.web.tasks",
    "tenants.tasks",
    "apps.operators.tasks",
]
