package fsaccess

import "syscall"

func statOf(sys any) (Stat, bool) {
	st, ok := sys.(*syscall.Stat_t)
	if !ok || st == nil {
		return Stat{}, false
	}
	return Stat{Uid: st.Uid, Gid: st.Gid, Dev: uint64(st.Dev), Ino: st.Ino, Rdev: uint64(st.Rdev),
		Blocks: st.Blocks, Ctime: st.Ctim.Nano()}, true
}
