/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * What rootscan's programs share: the maps user space sees (the watched cgroups, the ring buffer, the drop counter;
 * every program declares them and the Go loader hands the exec program's instances to the others, so there is one
 * of each), the event layouts the Go decoder reads (bpf/event.go: keep both in step), and the overlayfs upper-layer
 * test.
 */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define TASK_COMM_LEN 16
#define FILENAME_LEN 256
#define ARGV_LEN 1024
#define PATH_HALF 512			/* path bytes kept; the buffer is twice that so the verifier sees every copy fit */
#define PATH_DEPTH 32			/* path components walked at most */

#define EVENT_EXEC 1
#define EVENT_MMAP 2
#define EVENT_NEW_CGROUP 3		/* struct cgroup_event: the first exec in a cgroup not watched (exec.c) */

#define FLAG_OVERLAY (1 << 0)		/* the file's superblock is overlayfs */
#define FLAG_UPPER (1 << 1)		/* ... and the overlay inode has an upper dentry */
#define FLAG_UPPER_GUESSED (1 << 2)	/* struct ovl_inode was not in the kernel's BTF: layout assumed, see below */
#define FLAG_PATH_PARTIAL (1 << 4)	/* the path walk stopped (depth, size, read error) before the process's root */

#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#define PROT_EXEC 0x4
#define MAP_ANONYMOUS 0x20

/* Cgroup ids (cgroup v2 inode numbers) of the containers user space watches; the value is unused. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, u64);
	__type(value, u8);
} watched SEC(".maps");

/* Events to user space; the loader may resize it before loading (a power-of-two multiple of the page size). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

/* Events dropped because the ring buffer was full, per CPU; user space sums them. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} lost SEC(".maps");

/* What every event starts with. The Go decoder (bpf/event.go) reads this layout: keep both in step. */
struct event_header {
	u32 kind;
	u32 flags;
	u64 cgroup_id;
	u64 ino;
	u32 dev;
	u32 pid;
	u32 ppid;		/* exec only */
	u32 uid;
	u32 gid;
	u32 prot;		/* mmap only */
	u16 path_len;
	u16 filename_len;	/* exec only */
	u16 argv_len;		/* exec only */
	u16 pad;
	u8 comm[TASK_COMM_LEN];
	/* The file's path inside the process's root, as NUL-terminated names from the file up (user space reverses). */
	u8 path[2 * PATH_HALF];
};

struct exec_event {
	struct event_header h;
	u8 filename[FILENAME_LEN];
	u8 argv[ARGV_LEN];
	/* The parent's comm at the exec: a short-lived parent (runc exec, a shell's subshell) is often gone before
	 * user space can read its /proc entry. */
	u8 pcomm[TASK_COMM_LEN];
};

struct mmap_event {
	struct event_header h;
};

/* A new cgroup's first exec: event_header without its path, the same layout (72 bytes instead of 1096). */
struct cgroup_event {
	u32 kind;
	u32 flags;
	u64 cgroup_id;
	u64 ino;
	u32 dev;
	u32 pid;
	u32 ppid;
	u32 uid;
	u32 gid;
	u32 prot;
	u16 path_len;
	u16 filename_len;
	u16 argv_len;
	u16 pad;
	u8 comm[TASK_COMM_LEN];
};
_Static_assert(sizeof(struct cgroup_event) == __builtin_offsetof(struct event_header, path),
	       "cgroup_event is event_header without the path");

static __always_inline bool is_watched(u64 cgroup_id)
{
	return bpf_map_lookup_elem(&watched, &cgroup_id) != NULL;
}

static __always_inline void count_lost(void)
{
	u32 zero = 0;
	u64 *n = bpf_map_lookup_elem(&lost, &zero);
	if (n)
		*n += 1; /* per-CPU slot: no other writer while this program runs on this CPU */
}

/*
 * overlay_flags decides whether inode is an overlayfs inode whose file lives on the upper layer (written, copied up
 * or modified since the container started) rather than in one of the image's lower layers: its superblock's magic
 * is OVERLAYFS_SUPER_MAGIC and the struct ovl_inode around it has a non-NULL __upperdentry (overlayfs sets it on
 * creation in, or copy-up to, the upper dir and never clears it while the inode lives).
 *
 * The ovl_inode offsets come from the kernel's BTF (CO-RE) when overlayfs is built in. When the type is absent (an
 * overlay module without BTF, or a kernel that renamed it) the fallback reads the pointer that directly follows the
 * embedded struct inode, where every kernel since 4.x keeps __upperdentry, and sets FLAG_UPPER_GUESSED so user
 * space can check the answer against the upper dir (inode and device) instead of trusting it.
 */
static __always_inline u32 overlay_flags(struct inode *inode)
{
	struct dentry *upper = NULL;
	u32 flags;

	if (BPF_CORE_READ(inode, i_sb, s_magic) != OVERLAYFS_SUPER_MAGIC)
		return 0;
	flags = FLAG_OVERLAY;
	if (bpf_core_type_exists(struct ovl_inode) && bpf_core_field_exists(struct ovl_inode, __upperdentry)) {
		void *oi = (void *)inode - bpf_core_field_offset(struct ovl_inode, vfs_inode);
		bpf_probe_read_kernel(&upper, sizeof(upper), oi + bpf_core_field_offset(struct ovl_inode, __upperdentry));
	} else {
		bpf_probe_read_kernel(&upper, sizeof(upper), (void *)inode + bpf_core_type_size(struct inode));
		flags |= FLAG_UPPER_GUESSED;
	}
	if (upper)
		flags |= FLAG_UPPER;
	return flags;
}

struct walk {
	struct event_header *h;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	struct dentry *d;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	u64 mnt_off;
	u32 off;
	bool done;
};

/* walk_step handles one dentry of walk_path: stop at the root, climb a mount, or copy a name and go up. */
static long walk_step(u64 i, void *arg)
{
	struct walk *w = arg;
	/* locals, not w->...: BPF_CORE_READ would record CO-RE relocations for struct walk itself */
	struct dentry *d = w->d;
	struct vfsmount *vfsmnt = w->vfsmnt;
	struct mount *mnt = w->mnt;
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	long n;

	if (d == w->root_dentry && vfsmnt == w->root_mnt) {
		w->done = 1;
		return 1;
	}
	if (d == BPF_CORE_READ(vfsmnt, mnt_root) || d == parent) {
		struct mount *up = BPF_CORE_READ(mnt, mnt_parent);
		if (up == mnt) { /* the namespace's root mount: the process's root is outside it */
			w->done = 1;
			return 1;
		}
		w->d = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = up;
		w->vfsmnt = (void *)up + w->mnt_off;
		return 0;
	}
	n = bpf_probe_read_kernel_str(&w->h->path[w->off & (PATH_HALF - 1)], PATH_HALF, BPF_CORE_READ(d, d_name.name));
	if (n <= 0)
		return 1;
	w->off += n;
	if (w->off >= PATH_HALF) {
		w->off = PATH_HALF - 1;
		return 1;
	}
	w->d = parent;
	return 0;
}

/*
 * walk_path writes the names from the file at f_path up to the current process's root (what d_path would print,
 * which tracing programs may not call) into h->path, leaf first, crossing mount points. The walk is bounded by
 * PATH_DEPTH steps and PATH_HALF bytes; when either runs out, or a read fails, FLAG_PATH_PARTIAL says the leading
 * components are missing. bpf_loop keeps the verifier's work to one pass over walk_step.
 */
static __always_inline void walk_path(struct event_header *h, struct path *f_path)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct walk w = {
		.h = h,
		.root_dentry = BPF_CORE_READ(task, fs, root.dentry),
		.root_mnt = BPF_CORE_READ(task, fs, root.mnt),
		.d = BPF_CORE_READ(f_path, dentry),
		.vfsmnt = BPF_CORE_READ(f_path, mnt),
		.mnt_off = bpf_core_field_offset(struct mount, mnt),
	};

	w.mnt = (void *)w.vfsmnt - w.mnt_off;
	bpf_loop(PATH_DEPTH, walk_step, &w, 0);
	h->path_len = w.off;
	if (!w.done)
		h->flags |= FLAG_PATH_PARTIAL;
}

/*
 * inode_ctime is the inode's change time in nanoseconds, 0 when the kernel's layout is unknown. Writing a file
 * changes it, so together with the inode number it tells a rewritten or new file (whose inode number may be a
 * freed one, reused) from the one already seen.
 */
static __always_inline u64 inode_ctime(struct inode *inode)
{
	if (bpf_core_field_exists(inode->i_ctime_sec))
		return BPF_CORE_READ(inode, i_ctime_sec) * 1000000000ULL + BPF_CORE_READ(inode, i_ctime_nsec);
	if (bpf_core_field_exists(((struct inode___v66 *)inode)->__i_ctime)) {
		struct timespec64 ts = BPF_CORE_READ((struct inode___v66 *)inode, __i_ctime);
		return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	}
	if (bpf_core_field_exists(((struct inode___old *)inode)->i_ctime)) {
		struct timespec64 ts = BPF_CORE_READ((struct inode___old *)inode, i_ctime);
		return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	}
	return 0;
}

/* fill_file sets what the header says about the file: inode, device, overlay layer, path. */
static __always_inline void fill_file(struct event_header *h, struct file *file)
{
	struct inode *inode = BPF_CORE_READ(file, f_inode);

	h->ino = BPF_CORE_READ(inode, i_ino);
	h->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	h->flags |= overlay_flags(inode);
	walk_path(h, &file->f_path);
}

/* fill_task sets who: cgroup, pid, uid, gid, comm (ppid is left to the exec program). */
static __always_inline void fill_task(struct event_header *h, u32 kind, u64 cgroup_id)
{
	u64 ugid = bpf_get_current_uid_gid();

	h->kind = kind;
	h->flags = 0;
	h->cgroup_id = cgroup_id;
	h->pid = bpf_get_current_pid_tgid() >> 32;
	h->ppid = 0;
	h->uid = (u32)ugid;
	h->gid = ugid >> 32;
	h->prot = 0;
	h->path_len = 0;
	h->filename_len = 0;
	h->argv_len = 0;
	h->pad = 0;
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}
