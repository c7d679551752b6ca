//go:build ignore
/* SPDX-License-Identifier: GPL-2.0 OR MIT */

#include "rootscan.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/*
 * Cgroups not watched that already had an exec reported (new_cgroup): user space hears of each such cgroup once,
 * so a container the daemon has not listed yet is noticed from its first exec, and a host cgroup costs one more
 * lookup per exec after its first. LRU: an evicted cgroup is reported once more, which user space ignores.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, u64);
	__type(value, u8);
} seen_cgroups SEC(".maps");

/* new_cgroup reports the first exec in a cgroup that is not watched, once per cgroup id (who, no file). */
static __always_inline void new_cgroup(u64 cgroup_id)
{
	struct cgroup_event *ev;
	u64 ugid;
	u8 one = 1;

	if (bpf_map_lookup_elem(&seen_cgroups, &cgroup_id))
		return;
	if (bpf_map_update_elem(&seen_cgroups, &cgroup_id, &one, BPF_NOEXIST))
		return; /* another CPU reported it first */
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count_lost();
		bpf_map_delete_elem(&seen_cgroups, &cgroup_id); /* the next exec tries again */
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ugid = bpf_get_current_uid_gid();
	ev->kind = EVENT_NEW_CGROUP;
	ev->cgroup_id = cgroup_id;
	ev->pid = bpf_get_current_pid_tgid() >> 32;
	ev->uid = (u32)ugid;
	ev->gid = ugid >> 32;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	bpf_ringbuf_submit(ev, 0);
}

/*
 * After a successful execve in a watched cgroup: who ran what. bprm->file is the file the kernel loaded (for a
 * script, its interpreter; bprm->filename is still the name the caller passed). Processes outside watched cgroups
 * cost two hash lookups and, once per cgroup, a header-only new-cgroup event. A BTF tracepoint: no kprobe and no
 * trampoline needed.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(rootscan_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	u64 cgroup_id = bpf_get_current_cgroup_id();
	struct exec_event *ev;
	u64 start, end, len;
	long n;

	if (!is_watched(cgroup_id)) {
		new_cgroup(cgroup_id);
		return 0;
	}
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count_lost();
		return 0;
	}
	fill_task(&ev->h, EVENT_EXEC, cgroup_id);
	ev->h.ppid = BPF_CORE_READ(p, real_parent, tgid);
	BPF_CORE_READ_STR_INTO(&ev->pcomm, p, real_parent, comm);
	fill_file(&ev->h, BPF_CORE_READ(bprm, file));

	n = bpf_probe_read_kernel_str(ev->filename, sizeof(ev->filename), BPF_CORE_READ(bprm, filename));
	ev->h.filename_len = n > 0 ? n - 1 : 0;

	start = BPF_CORE_READ(p, mm, arg_start);
	end = BPF_CORE_READ(p, mm, arg_end);
	len = end > start ? end - start : 0;
	if (len > ARGV_LEN)
		len = ARGV_LEN;
	if (bpf_probe_read_user(ev->argv, len, (void *)start) == 0)
		ev->h.argv_len = len;

	bpf_ringbuf_submit(ev, 0);
	return 0;
}
