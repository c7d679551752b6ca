/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * A hand-trimmed subset of the kernel types rootscan's programs read, instead of a full `bpftool btf dump` (120k
 * lines that change with every kernel). Every struct is marked preserve_access_index, so clang emits CO-RE
 * relocations and the loader resolves field offsets against the running kernel's BTF (/sys/kernel/btf/vmlinux):
 * only the field names and types must match, never the layout or the field order. Add a field here when a program
 * needs it.
 */
#pragma once

typedef unsigned char __u8;
typedef short int __s16;
typedef short unsigned int __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long int __s64;
typedef long long unsigned int __u64;
typedef __u8 u8;
typedef __s16 s16;
typedef __u16 u16;
typedef __s32 s32;
typedef __u32 u32;
typedef __s64 s64;
typedef __u64 u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
typedef int pid_t;
typedef __u32 dev_t;

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct super_block {
	dev_t s_dev;
	long unsigned int s_magic;
};

struct inode {
	long unsigned int i_ino;
	struct super_block *i_sb;
	s64 i_ctime_sec;	/* Linux 6.11 and later */
	u32 i_ctime_nsec;
};

struct timespec64 {
	s64 tv_sec;
	long int tv_nsec;
};

/* Earlier names of the inode's change time (CO-RE flavours: the part after ___ is ignored when matching). */
struct inode___v66 {
	struct timespec64 __i_ctime;	/* Linux 6.6 to 6.10 */
};

struct inode___old {
	struct timespec64 i_ctime;	/* before 6.6 */
};

struct qstr {
	const unsigned char *name;
};

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
	struct inode *d_inode;
};

struct vfsmount {
	struct dentry *mnt_root;
};

/* The mount around a vfsmount (fs/mount.h): how a path walk climbs from one mount to the one it is mounted on. */
struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
};

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
};

struct file {
	struct path f_path;
	struct inode *f_inode;
};

/* overlayfs' in-memory inode: the VFS inode embedded in it and the upper dentry next to it (fs/overlayfs/ovl_entry.h). */
struct ovl_inode {
	struct inode vfs_inode;
	struct dentry *__upperdentry;
};

struct mm_struct {
	long unsigned int arg_start;
	long unsigned int arg_end;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct fs_struct {
	struct path root;
};

struct task_struct {
	pid_t pid;
	pid_t tgid;
	struct task_struct *real_parent;
	struct mm_struct *mm;
	struct files_struct *files;
	struct fs_struct *fs;
	char comm[16];
};

struct linux_binprm {
	struct file *file;
	const char *filename;
};


#pragma clang attribute pop
