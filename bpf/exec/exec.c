//go:build ignore
/* SPDX-License-Identifier: GPL-2.0 OR MIT */

#include "rootscan.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/*
 * After a successful execve in a watched cgroup: who ran what. bprm->file is the file the kernel loaded (for a
 * script, its interpreter; bprm->filename is still the name the caller passed). Processes outside watched cgroups
 * cost one hash lookup. A BTF tracepoint: no kprobe and no trampoline needed.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(rootscan_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	u64 cgroup_id = bpf_get_current_cgroup_id();
	struct exec_event *ev;
	u64 start, end, len;
	long n;

	if (!is_watched(cgroup_id))
		return 0;
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count_lost();
		return 0;
	}
	fill_task(&ev->h, EVENT_EXEC, cgroup_id);
	ev->h.ppid = BPF_CORE_READ(p, real_parent, tgid);
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
