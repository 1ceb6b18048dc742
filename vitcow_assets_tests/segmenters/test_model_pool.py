"""The process's models on leased devices: one model per device, reused while idle, a busy
pool waits (bounded) instead of doubling up. A test backend with two simulated devices
stands in for SAM3 here (loading SAM3 is exercised by the device tests of the CLI)."""

import dataclasses
import threading
import weakref

import pytest

from vitcow_assets.runtime.device_leases import Device, DevicesBusy, try_lease
from vitcow_assets.segmenters import BACKENDS, Backend
from vitcow_assets.segmenters.base import SegmenterBase
from vitcow_assets.segmenters.model_pool import ModelPool


@dataclasses.dataclass(frozen=True)
class TwoDeviceSettings:
    variant: str = "a"


class Loaded(SegmenterBase):
    family = "two"
    loads: list = []

    def __init__(self, settings, device=None):
        self.settings, self.device = settings, device
        Loaded.loads.append((settings.variant, device))


def devices(settings):
    return [Device("cpu:0", "pool-test-cpu0"), Device("cpu:1", "pool-test-cpu1")]


@pytest.fixture()
def pool(monkeypatch):
    here = __name__
    monkeypatch.setitem(BACKENDS, "two", Backend("two", f"{here}:TwoDeviceSettings", f"{here}:Loaded", f"{here}:devices"))
    Loaded.loads = []
    pool = ModelPool()
    yield pool
    pool.clear()


def test_steps_at_once_get_distinct_devices_and_an_idle_model_is_taken_again(pool, tmp_path):
    first = pool.take("two", TwoDeviceSettings(), tmp_path, wait_s=0)
    second = pool.take("two", TwoDeviceSettings(), tmp_path, wait_s=0)
    assert {first.device, second.device} == {"cpu:0", "cpu:1"} and first.model is not second.model
    assert [device for _, device in Loaded.loads] == [first.device, second.device]
    pool.give_back(first)
    again = pool.take("two", TwoDeviceSettings(), tmp_path, wait_s=0)
    assert again is first and len(Loaded.loads) == 2  # the idle model, not a new load


def test_with_every_device_busy_a_step_waits_then_fails_naming_the_holders(pool, tmp_path):
    held = [pool.take("two", TwoDeviceSettings(), tmp_path, wait_s=0) for _ in range(2)]
    heard = []
    with pytest.raises(DevicesBusy, match=r"every device is leased by another model \(cpu:0 by pid \d+ on .*; cpu:1 by pid"):
        pool.take("two", TwoDeviceSettings(), tmp_path, wait_s=0.3, on_wait=heard.append)
    assert len(heard) == 1 and heard[0].startswith("waiting up to 0 s for a free device")
    got = []
    waiter = threading.Thread(target=lambda: got.append(pool.take("two", TwoDeviceSettings(), tmp_path, wait_s=30)))
    waiter.start()
    pool.give_back(held[1])  # an idle model in this process: the waiter takes it (no new load)
    waiter.join(timeout=30)
    assert got and got[0] is held[1] and len(Loaded.loads) == 2


def test_one_device_never_holds_two_models(pool, tmp_path):
    """New settings on a full pool: the idle model leaves its device before another loads there."""
    a0 = pool.take("two", TwoDeviceSettings("a"), tmp_path, wait_s=0)
    a1 = pool.take("two", TwoDeviceSettings("a"), tmp_path, wait_s=0)
    pool.give_back(a1)
    gone = weakref.ref(a1.model)
    b = pool.take("two", TwoDeviceSettings("b"), tmp_path, wait_s=0)
    assert b.device == a1.device and b.lease is a1.lease and gone() is None
    assert [p.device for p in pool.placed()] == [a0.device, b.device]
    assert Loaded.loads[-1] == ("b", a1.device)


def test_a_failed_load_frees_its_device_and_clear_frees_every_device(pool, tmp_path, monkeypatch):
    monkeypatch.setattr(Loaded, "__init__", lambda self, settings, device=None: (_ for _ in ()).throw(RuntimeError("broken")))
    with pytest.raises(RuntimeError, match="broken"):
        pool.take("two", TwoDeviceSettings(), tmp_path, wait_s=0)
    for device in devices(None):
        lease = try_lease(device, tmp_path)
        assert lease is not None
        lease.release()
