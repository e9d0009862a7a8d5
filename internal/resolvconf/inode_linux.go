package resolvconf

import (
	"os"
	"syscall"
)

// inode returns the file's inode, so a resolv.conf replaced by a rename counts as changed even
// when its size and modification time match.
func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
