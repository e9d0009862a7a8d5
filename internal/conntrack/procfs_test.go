package conntrack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Headers as ct_cpu_seq_show prints them (double spaces included).
const (
	// header615 is Linux 5.15 and later (6.18 on the lab machine): clashres and chainlength.
	header615 = "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart"
	// header510 is Linux 5.10 to 5.14: clashres, and delete_list not yet chainlength.
	header510 = "entries  clashres found new invalid ignore delete delete_list insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart"
	// header44 is Linux 4.x to 5.9: searched where clashres is now.
	header44 = "entries  searched found new invalid ignore delete delete_list insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart"
	// header310 is Linux 3.x: no search_restart yet.
	header310 = "entries  searched found new invalid ignore delete delete_list insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete"
)

// lab6 is the lab node's file after racer -n 500 and synrace -n 300 (RACE-LAB.md §4): per CPU
// insert_failed 147/152, drop 147/153, invalid 0/1, clashres 438/9; 2673 entries.
const lab6 = header615 + `
00000a71  000001b6 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000093 00000093 00000000 00000000  00000000 00000000 00000000 00000000
00000a71  00000009 00000000 00000000 00000001 00000000 00000000 00000000 00000000 00000098 00000099 00000000 00000000  00000000 00000000 00000000 00000000
`

func TestParseProcfs(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  Stats
	}{
		{"6.x lab node", lab6, Stats{
			Invalid: 1, InsertFailed: 299, Drop: 300, ClashResolve: 447,
			HasClashResolve: true, HasChainTooLong: true, Entries: 2673, Source: "procfs",
		}},
		{"6.x idle", header615 + `
00000000  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000000
00000000  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000000
`, Stats{HasClashResolve: true, HasChainTooLong: true, Source: "procfs"}},
		{"6.x every column distinct", header615 + `
00000010  00000001 00000002 00000003 00000004 00000005 00000006 00000007 00000008 00000009 0000000a 0000000b 0000000c  0000000d 0000000e 0000000f 00000011
00000010  00000100 00000200 00000300 00000400 00000500 00000600 00000700 00000800 00000900 00000a00 00000b00 00000c00  00000d00 00000e00 00000f00 00001100
`, Stats{
			ClashResolve: 0x101, Found: 0x202, Invalid: 0x404, ChainTooLong: 0x707, Insert: 0x808,
			InsertFailed: 0x909, Drop: 0xa0a, EarlyDrop: 0xb0b, Error: 0xc0c, SearchRestart: 0x1111,
			HasClashResolve: true, HasChainTooLong: true, Entries: 0x10, Source: "procfs",
		}},
		{"5.10 clashres, no chainlength", header510 + `
00000005  00000003 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001 00000001 00000000 00000000  00000000 00000000 00000000 00000000
`, Stats{ClashResolve: 3, InsertFailed: 1, Drop: 1, HasClashResolve: true, Entries: 5, Source: "procfs"}},
		{"4.x searched, no clashres", header44 + `
00000007  0000ffff 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000004 00000000 00000000 00000000  00000000 00000000 00000000 00000002
00000007  0000ffff 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000005 00000000 00000000 00000000  00000000 00000000 00000000 00000000
`, Stats{InsertFailed: 9, SearchRestart: 2, Entries: 7, Source: "procfs"}},
		{"3.x no search_restart", header310 + `
00000001  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000002 00000003 00000004 00000000  00000000 00000000 00000000
`, Stats{InsertFailed: 2, Drop: 3, EarlyDrop: 4, Entries: 1, Source: "procfs"}},
		{"64-bit values, blank lines, CRLF", header615 + "\r\n\r\n" +
			"100000000  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 ffffffff ffffffff 00000000 00000000  00000000 00000000 00000000 00000000\r\n" +
			"100000000  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 FFFFFFFF 00000001 00000000 00000000  00000000 00000000 00000000 00000000\r\n",
			Stats{InsertFailed: 0x1fffffffe, Drop: 0x100000000, HasClashResolve: true, HasChainTooLong: true, Entries: 0x100000000, Source: "procfs"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseProcfs(strings.NewReader(tc.input))
			if err != nil {
				t.Fatalf("Expected no error, got %v", err)
			}
			if got != tc.want {
				t.Errorf("Expected %+v, got %+v", tc.want, got)
			}
		})
	}
}

func TestParseProcfsMalformed(t *testing.T) {
	row := "00000000  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000000"
	tests := []struct {
		name, input, errContent string
	}{
		{"empty", "", "empty"},
		{"only blank", "\n\n", "no \"entries\" column"},
		{"header only", header615 + "\n", "no CPU rows"},
		{"no drop column", "entries insert_failed\n0 0\n", "no \"drop\" column"},
		{"duplicate column", "entries drop drop insert_failed\n0 0 0 0\n", "twice"},
		{"short row", header615 + "\n" + row[:len(row)-9] + "\n", "16 columns, the header 17"},
		{"long row", header615 + "\n" + row + " 00000000\n", "18 columns, the header 17"},
		{"not hex", header615 + "\n" + strings.Replace(row, "00000000", "0000zz00", 1) + "\n", `row 1, column entries: "0000zz00" is not a hex counter`},
		{"0x prefix", header615 + "\n" + strings.Replace(row, "00000000", "0x000000", 1) + "\n", "not a hex counter"},
		{"negative", header615 + "\n" + strings.Replace(row, "00000000", "-0000001", 1) + "\n", "not a hex counter"},
		{"overflow", header615 + "\n" + strings.Replace(row, "00000000", "1ffffffffffffffff", 1) + "\n", "not a hex counter"},
		{"second row bad", header615 + "\n" + row + "\n" + row + " x\n", "row 2"},
		{"binary", "\x00\xff\xfe", "no \"entries\" column"},
		{"line too long", header615 + "\n" + strings.Repeat("0", 70000) + "\n", "too long"},
		{"too many rows", header615 + "\n" + strings.Repeat(row+"\n", maxRows+1), "more than 8192 CPU rows"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseProcfs(strings.NewReader(tc.input))
			if err == nil {
				t.Fatalf("Expected an error, got %+v", s)
			}
			if !strings.Contains(err.Error(), tc.errContent) {
				t.Errorf("Expected error containing %q, got %q", tc.errContent, err)
			}
			if s != (Stats{}) {
				t.Errorf("Expected zero Stats with the error, got %+v", s)
			}
		})
	}
}

func FuzzParseProcfs(f *testing.F) {
	f.Add(lab6)
	f.Add(header44 + "\n0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n")
	f.Add("entries drop insert_failed\n1 2 3\n")
	f.Fuzz(func(t *testing.T, input string) {
		s, err := ParseProcfs(strings.NewReader(input))
		if err == nil && s.Source != "procfs" {
			t.Errorf("Expected source procfs, got %q", s.Source)
		}
	})
}

func TestProcfsReader(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nf_conntrack")
	if err := os.WriteFile(path, []byte(lab6), 0o644); err != nil {
		t.Fatal(err)
	}
	r := NewProcfs(path)
	defer r.Close()
	s, err := r.Read()
	if err != nil {
		t.Fatalf("Expected no error, got %v", err)
	}
	// Not a /proc file: no sysctl to take nf_conntrack_max from.
	if s.InsertFailed != 299 || s.ClashResolve != 447 || s.Entries != 2673 || s.MaxEntries != 0 {
		t.Errorf("Expected insert_failed 299, clashres 447, 2673 entries and no limit, got %+v", s)
	}

	if err := os.WriteFile(path, []byte(header615+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(); err == nil || !strings.Contains(err.Error(), path+": no CPU rows") {
		t.Errorf("Expected an error naming %s, got %v", path, err)
	}
	if _, err := NewProcfs(filepath.Join(dir, "missing")).Read(); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Expected an error naming the missing file, got %v", err)
	}
}

// TestProcfsReaderHost reads this machine's file, where the kernel has one.
func TestProcfsReaderHost(t *testing.T) {
	if _, err := os.Stat(DefaultProcPath); err != nil {
		t.Skipf("Skipping: %v", err)
	}
	s, err := NewProcfs("").Read()
	if err != nil {
		t.Fatalf("Expected no error, got %v", err)
	}
	if s.Source != "procfs" {
		t.Errorf("Expected source procfs, got %q", s.Source)
	}
	if _, err := os.Stat(defaultMaxPath); err == nil && s.MaxEntries == 0 {
		t.Errorf("Expected MaxEntries from %s, got 0", defaultMaxPath)
	}
}
