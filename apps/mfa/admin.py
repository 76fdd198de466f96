"""django-otp registers its devices in the agency admin, with a page showing each authenticator's
secret as a QR code. Nobody but its owner may see that: devices are managed on the person's own
Two-step sign-in page only."""

from django.contrib import admin
from django_otp.plugins.otp_totp.models import TOTPDevice

if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)
