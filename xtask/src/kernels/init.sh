#!/bin/sh
# PID 1 of the test-kernels initramfs: mount what the lab needs, load the lab's modules, run the
# smoke suite (or the virtio-net row's guest), power off. Every line the matrix reads starts
# with "smoke: " (or "virtio: ").
# smoke_modes and smoke_role come from the kernel command line (the kernel hands unknown
# key=value words without a dot to init as environment variables).
export PATH=/usr/sbin:/usr/bin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# `ip netns add` keeps its namespaces under /run/netns.
mount -t tmpfs run /run
mount -t tmpfs tmp /tmp
# libxdp pins its dispatchers under /sys/fs/bpf/xdp, where the shield finds them.
mount -t bpf bpf /sys/fs/bpf
for m in $(cat /etc/modules); do
	insmod "/lib/modules/$m.ko" || echo "smoke: insmod $m failed"
done
ip link set lo up
echo "smoke: kernel $(uname -r) up after $(cut -d' ' -f1 /proc/uptime) s"
if [ "$smoke_role" = virtio ]; then
	# The virtio-net row: the host drives the checks through the guest's control port.
	virtio guest
	echo "virtio: guest exit $? after $(cut -d' ' -f1 /proc/uptime) s"
else
	# /etc/smoke-vlan: whether this kernel package has 8021q, decided when the image was built.
	smoke --modes "${smoke_modes:-full}" --vlan "$(cat /etc/smoke-vlan)"
	echo "smoke: exit $? after $(cut -d' ' -f1 /proc/uptime) s"
fi
poweroff -f
# If the power-off fails, init's exit panics the kernel; panic=-1 and -no-reboot end qemu.
