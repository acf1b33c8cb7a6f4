"""Bodies shaped as collectd 5.12's write_http sent them, and the original README's notification."""

from __future__ import annotations

PUTVAL = (
    "PUTVAL restmq-test/load/load interval=1.000 1795840549.195:3.42:2.19:1.10\r\n"
    "PUTVAL restmq-test/cpu-0/cpu-idle interval=1.000 1795840550.169:42\r\n"
)
PUTVAL_RECORDS = [
    {"host": "restmq-test", "plugin_instance": "load", "type_instance": "load",
     "interval": 1.0, "value": "1795840549.195:3.42:2.19:1.10"},
    {"host": "restmq-test", "plugin_instance": "cpu-0", "type_instance": "cpu-idle",
     "interval": 1.0, "value": "1795840550.169:42"},
]
COLLECTD_JSON = (
    '[{"values":[3.54736328125,2.2451171875,1.125],"dstypes":["gauge","gauge","gauge"],'
    '"dsnames":["shortterm","midterm","longterm"],"time":1795840553.203,"interval":1.000,'
    '"host":"restmq-test","plugin":"load","plugin_instance":"","type":"load",'
    '"type_instance":""}]'
)
NOTIFICATION = (
    "Severity: WARNING\nTime: 1288548727\nHost: collectd_restmq_server\nPlugin: df\nType: df\n"
    "TypeInstance: boot\nDataSource: used\nCurrentValue: 1.164974e+08\nWarningMin: nan\n"
    "WarningMax: 1.000000e+01\nFailureMin: nan\nFailureMax: nan\n\n"
    'Host collectd_restmq_server, plugin df type df (instance boot): Data source "used" is '
    "currently 116497408.000000. That is above the warning threshold of 10.000000%."
)
NOTIFICATION_RECORDS = [
    {"severity": "WARNING"}, {"time": "1288548727"}, {"host": "collectd_restmq_server"},
    {"plugin": "df"}, {"type": "df"}, {"typeinstance": "boot"}, {"datasource": "used"},
    {"currentvalue": "1.164974e+08"}, {"warningmin": "nan"}, {"warningmax": "1.000000e+01"},
    {"failuremin": "nan"}, {"failuremax": "nan"},
    {"event_text": NOTIFICATION.split("\n\n", 1)[1]},
]
