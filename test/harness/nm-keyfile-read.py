#!/usr/bin/python3
"""Reads a NetworkManager keyfile from stdin with libnm's own keyfile reader (nm_keyfile_read, the code
NetworkManager and `nmcli --offline` use), collects every warning the reader raises, verifies the connection, and
prints what NetworkManager would use as JSON. Needs python3-gi and gir1.2-nm-1.0."""
import json
import sys

import gi

gi.require_version("NM", "1.0")
from gi.repository import GLib, NM  # noqa: E402

warnings = []


def handler(_keyfile, _connection, handler_type, handler_data, *_user_data):
    if handler_type == NM.KeyfileHandlerType.WARN:
        message, severity = handler_data.warn_get()
        warnings.append(f"{severity.value_nick}: {message}")
    return False


data = sys.stdin.read()
kf = GLib.KeyFile()
kf.load_from_data(data, len(data.encode()), GLib.KeyFileFlags.NONE)
conn = NM.keyfile_read(kf, "/etc/NetworkManager/system-connections", NM.KeyfileHandlerFlags.NONE, handler, None)
verify_error = None
try:
    conn.verify()
except GLib.Error as e:
    verify_error = e.message


def ip(setting):
    if setting is None:
        return None
    return {
        "method": setting.get_method(),
        "addresses": [f"{a.get_address()}/{a.get_prefix()}" for a in (setting.get_address(i) for i in range(setting.get_num_addresses()))],
        "gateway": setting.get_gateway(),
        "dns": [setting.get_dns(i) for i in range(setting.get_num_dns())],
        "dnsSearch": [setting.get_dns_search(i) for i in range(setting.get_num_dns_searches())],
    }


c = conn.get_setting_connection()
print(json.dumps({
    "warnings": warnings,
    "verifyError": verify_error,
    "libnm": f"{NM.MAJOR_VERSION}.{NM.MINOR_VERSION}.{NM.MICRO_VERSION}",
    "id": c.get_id(),
    "uuid": c.get_uuid(),
    "type": c.get_connection_type(),
    "interfaceName": c.get_interface_name(),
    "autoconnect": c.get_autoconnect(),
    "macAddress": conn.get_setting_wired().get_mac_address() if conn.get_setting_wired() else None,
    "ipv4": ip(conn.get_setting_ip4_config()),
    "ipv6": ip(conn.get_setting_ip6_config()),
}))
