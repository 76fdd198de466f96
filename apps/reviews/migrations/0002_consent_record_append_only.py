from django.db import migrations

# The consent record is the evidence of what each client approved: append-only, like the audit
# log. The database itself refuses to change or remove rows, whatever code (or person with a SQL
# prompt under the application's role) tries. The function lives in each tenant's schema, so
# cloned schemas carry it with the table.
FORWARD = """
CREATE FUNCTION reviews_consent_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consent records cannot be changed or removed (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER reviews_consent_no_update_delete BEFORE UPDATE OR DELETE ON reviews_consentrecord
    FOR EACH ROW EXECUTE FUNCTION reviews_consent_refuse_change();
CREATE TRIGGER reviews_consent_no_truncate BEFORE TRUNCATE ON reviews_consentrecord
    FOR EACH STATEMENT EXECUTE FUNCTION reviews_consent_refuse_change();
"""

REVERSE = """
DROP TRIGGER IF EXISTS reviews_consent_no_truncate ON reviews_consentrecord;
DROP TRIGGER IF EXISTS reviews_consent_no_update_delete ON reviews_consentrecord;
DROP FUNCTION IF EXISTS reviews_consent_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("reviews", "0001_client_links_and_consent")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
