from django.db import migrations

# The audit log is append-only: the database itself refuses to change or remove rows,
# whatever code (or person with a SQL prompt under the application's role) tries.
# The function lives in each tenant's schema, so cloned schemas carry it with the table.
FORWARD = """
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit log entries cannot be changed or removed (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_auditlog
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_auditlog
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
"""

REVERSE = """
DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_auditlog;
DROP TRIGGER IF EXISTS audit_log_no_update_delete ON audit_auditlog;
DROP FUNCTION IF EXISTS audit_log_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_foreign_keys")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
