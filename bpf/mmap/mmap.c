//go:build ignore
/* SPDX-License-Identifier: GPL-2.0 OR MIT */

#include "rootscan.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct seen_key {
	u64 cgroup_id;
	u64 ino;
	u64 ctime;
	u32 dev;
	u32 pad;
};

/*
 * Files already reported per container, by inode and change time: a file written since, or a new file on a
 * reused inode number, is reported again. LRU: when it is full the oldest entries go and a file may be reported
 * again, which costs an event, never a miss.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct seen_key);
	__type(value, u8);
} seen SEC(".maps");

/* The stable layout of syscall entry tracepoints (see events/syscalls/sys_enter_mmap/format). */
struct sys_enter_ctx {
	u64 common;
	s32 nr;
	u32 pad;
	u64 args[6];
};

/*
 * An mmap of a file with PROT_EXEC by a watched cgroup: how the dynamic loader and dlopen map shared libraries.
 * A syscall tracepoint, because this kind of kernel refuses trampoline programs (BPF LSM, fentry) and has no
 * kprobes; it fires at entry, so a mapping the kernel then refuses is reported too. The first mapping of a file
 * per container is reported, the rest are dropped in the kernel (seen). Other processes cost a flag test and,
 * for executable file mappings, one hash lookup.
 */
SEC("tracepoint/syscalls/sys_enter_mmap")
int rootscan_mmap(struct sys_enter_ctx *ctx)
{
	u64 prot = ctx->args[2], flags = ctx->args[3], fd = ctx->args[4];
	struct seen_key key = {};
	struct mmap_event *ev;
	struct fdtable *fdt;
	struct file *file;
	u64 cgroup_id;
	u8 one = 1;

	if (!(prot & PROT_EXEC) || (flags & MAP_ANONYMOUS) || fd > 0x7fffffff)
		return 0;
	cgroup_id = bpf_get_current_cgroup_id();
	if (!is_watched(cgroup_id))
		return 0;

	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	fdt = BPF_CORE_READ(task, files, fdt);
	if (fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) != 0 || !file)
		return 0;

	struct inode *inode = BPF_CORE_READ(file, f_inode);
	key.cgroup_id = cgroup_id;
	key.ino = BPF_CORE_READ(inode, i_ino);
	key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	key.ctime = inode_ctime(inode);
	if (bpf_map_update_elem(&seen, &key, &one, BPF_NOEXIST) != 0)
		return 0; /* reported before */

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count_lost();
		bpf_map_delete_elem(&seen, &key); /* let the next mapping try again */
		return 0;
	}
	fill_task(&ev->h, EVENT_MMAP, cgroup_id);
	ev->h.prot = prot;
	fill_file(&ev->h, file);
	bpf_ringbuf_submit(ev, 0);
	return 0;
}
