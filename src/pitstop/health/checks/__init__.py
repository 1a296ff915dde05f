"""Built-in checks. Each registers by name in `pitstop.health.checks`, the same way plugins do."""

from pitstop.health.base import checks
from pitstop.health.checks.camera import CameraImageCheck
from pitstop.health.checks.coil import CoilUaCheck, HeatBalanceCheck
from pitstop.health.checks.control import SetpointCheck
from pitstop.health.checks.data import FreshnessCheck, HeartbeatCheck, JobCheck
from pitstop.health.checks.database import DatabaseCheck, PostgresCheck
from pitstop.health.checks.host import NetworkCheck
from pitstop.health.checks.logs import LogFileCheck
from pitstop.health.checks.modbus import ModbusCheck
from pitstop.health.checks.network import HttpCheck, MqttCheck, RtspCheck, TcpCheck
from pitstop.health.checks.postgres_activity import PostgresActivityCheck
from pitstop.health.checks.readings import ReadingCheck
from pitstop.health.checks.sensors import FrozenCheck, LimitsCheck
from pitstop.health.checks.serving import PredictLatencyCheck
from pitstop.health.checks.system import CpuCheck, DiskCheck, MemoryCheck, ProcessCheck, ProcessMemoryCheck
from pitstop.health.checks.updates import UpdatesCheck

BUILTIN = (
    CpuCheck,
    MemoryCheck,
    DiskCheck,
    ProcessCheck,
    ProcessMemoryCheck,
    UpdatesCheck,
    NetworkCheck,
    ReadingCheck,
    PredictLatencyCheck,
    HttpCheck,
    TcpCheck,
    RtspCheck,
    CameraImageCheck,
    ModbusCheck,
    MqttCheck,
    DatabaseCheck,
    PostgresCheck,
    PostgresActivityCheck,
    LogFileCheck,
    FreshnessCheck,
    LimitsCheck,
    FrozenCheck,
    SetpointCheck,
    HeatBalanceCheck,
    CoilUaCheck,
    JobCheck,
    HeartbeatCheck,
)
for _cls in BUILTIN:
    checks.add(_cls)

__all__ = ["BUILTIN", "checks"]
