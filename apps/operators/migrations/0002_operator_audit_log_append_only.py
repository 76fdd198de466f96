from django.db import migrations

# The operators' audit log is append-only, as each agency's is (apps/audit/migrations/0003): the
# database itself refuses to change or remove its rows, whatever code or SQL prompt tries.
FORWARD = """
CREATE FUNCTION public.operator_audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'operator audit log entries cannot be changed or removed (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER operator_audit_no_update_delete BEFORE UPDATE OR DELETE ON public.operators_operatorauditlog
    FOR EACH ROW EXECUTE FUNCTION public.operator_audit_refuse_change();
CREATE TRIGGER operator_audit_no_truncate BEFORE TRUNCATE ON public.operators_operatorauditlog
    FOR EACH STATEMENT EXECUTE FUNCTION public.operator_audit_refuse_change();
"""

REVERSE = """
DROP TRIGGER IF EXISTS operator_audit_no_truncate ON public.operators_operatorauditlog;
DROP TRIGGER IF EXISTS operator_audit_no_update_delete ON public.operators_operatorauditlog;
DROP FUNCTION IF EXISTS public.operator_audit_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("operators", "0001_agency_stats_and_operator_audit_log")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
