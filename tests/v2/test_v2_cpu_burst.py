"""cpu.max.burst and cpu.max on a real cgroup v2 kernel: the kernel refuses
a burst above the quota (EINVAL), whichever file is written, so lowering the
quota below the current burst needs the burst lowered first, and raising the
burst above the current quota needs the quota raised first (runc's order)."""

from v2lib import r, run


def spec(quota, burst):
    return {'version': 1, 'cgroups': {'ct': {'cpu.max': '%d 100000' % quota, 'cpu.max.burst': burst}}}


def test_burst_and_quota_go_down_and_up_together(sandbox):
    first = run(sandbox, spec=spec(100000, 80000))
    assert first['changed'] and not first.get('failed'), first
    assert (r(sandbox, 'ct', 'cpu.max'), r(sandbox, 'ct', 'cpu.max.burst')) == ('100000 100000', '80000')
    # down: before, cpu.max 50000 was written under the burst 80000 and refused (EINVAL)
    down = run(sandbox, spec=spec(50000, 10000), mode='opport')
    assert down['changed'] and not down.get('failed') and not down['failed_items'], down
    assert (r(sandbox, 'ct', 'cpu.max'), r(sandbox, 'ct', 'cpu.max.burst')) == ('50000 100000', '10000')
    # up: the burst 150000 is refused under the quota 50000, then written again after cpu.max
    up = run(sandbox, spec=spec(200000, 150000), mode='opport')
    assert up['changed'] and not up.get('failed') and not up['failed_items'], up
    assert (r(sandbox, 'ct', 'cpu.max'), r(sandbox, 'ct', 'cpu.max.burst')) == ('200000 100000', '150000')
    again = run(sandbox, spec=spec(200000, 150000), mode='opport')
    assert again['changed'] is False and not again.get('failed'), again


def test_a_failed_restore_puts_burst_and_quota_back_in_an_order_the_kernel_takes(sandbox):
    run(sandbox, spec=spec(100000, 80000))
    for quota, burst in ((50000, 10000), (200000, 150000)):
        # bind mode adopts ct; a later write the kernel refuses (an io.max line for a block device that does
        # not exist: ENODEV) rolls everything back
        bad = spec(quota, burst)
        bad['cgroups']['ct/x'] = {'io.max': ['254:254 rbps=1048576']}
        result = run(sandbox, spec=bad, mode='bind')
        assert result.get('failed') and 'Rolled back' in result['msg'], result
        assert not result.get('rollback_errors'), result
        assert (r(sandbox, 'ct', 'cpu.max'), r(sandbox, 'ct', 'cpu.max.burst')) == ('100000 100000', '80000')
