// Command tlog-check reads a weightseal revocation log as an unmodified third-party
// tlog-tiles reader would: it verifies the signed checkpoint with golang.org/x/mod/sumdb/note,
// reads the hash tiles through golang.org/x/mod/sumdb/tlog's TileHashReader (which checks
// every tile against the checkpoint's root), checks that every entry of every entry bundle
// hashes to its leaf in the level-0 tiles, and verifies an inclusion proof built by
// tlog.ProveRecord with tlog.CheckRecord.
//
// Usage: tlog-check -log <base URL or export folder> -key <log verifier key> [-index N]
//
// The only thing it knows about weightseal is where C2SP tlog-tiles puts things:
// <prefix>/checkpoint, <prefix>/tile/<L>/<N>[.p/<W>] and <prefix>/tile/entries/<N>[.p/<W>],
// which are Go's tile paths without the height element.
package main

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const height = 8

var base string

// fetch reads one resource below the prefix: over HTTP(S), or as a file of an export folder.
func fetch(path string) ([]byte, error) {
	if strings.HasPrefix(base, "http://") || strings.HasPrefix(base, "https://") {
		resp, err := http.Get(strings.TrimSuffix(base, "/") + "/" + path)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: HTTP %d", path, resp.StatusCode)
		}
		return io.ReadAll(io.LimitReader(resp.Body, 1<<22))
	}
	return os.ReadFile(filepath.Join(base, filepath.FromSlash(path)))
}

// c2spPath is Go's tile path without the height element ("tile/8/0/x001/234" becomes
// "tile/0/x001/234"); data tiles are C2SP entry bundles ("tile/entries/...").
func c2spPath(t tlog.Tile) string {
	p := strings.TrimPrefix(t.Path(), fmt.Sprintf("tile/%d/", height))
	if strings.HasPrefix(p, "data/") {
		return "tile/entries/" + strings.TrimPrefix(p, "data/")
	}
	return "tile/" + p
}

type tiles struct{ fetched int }

func (r *tiles) Height() int { return height }

func (r *tiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, t := range ts {
		data, err := fetch(c2spPath(t))
		if err != nil {
			return nil, err
		}
		if len(data) != t.W*tlog.HashSize {
			return nil, fmt.Errorf("%s: %d bytes, expected %d", c2spPath(t), len(data), t.W*tlog.HashSize)
		}
		out[i] = data
		r.fetched++
	}
	return out, nil
}

func (r *tiles) SaveTiles([]tlog.Tile, [][]byte) {}

// bundle splits an entry bundle into its uint16-length-prefixed entries.
func bundle(data []byte) ([][]byte, error) {
	var out [][]byte
	for len(data) > 0 {
		if len(data) < 2 {
			return nil, errors.New("truncated entry length")
		}
		n := int(binary.BigEndian.Uint16(data))
		if len(data) < 2+n {
			return nil, errors.New("truncated entry")
		}
		out = append(out, data[2:2+n])
		data = data[2+n:]
	}
	return out, nil
}

func run() error {
	key := flag.String("key", "", "the log's note verifier key")
	index := flag.Int64("index", -1, "entry whose inclusion proof to check (default: the last)")
	flag.StringVar(&base, "log", "", "base URL or export folder")
	flag.Parse()
	if base == "" || *key == "" {
		return errors.New("usage: tlog-check -log URL|DIR -key VERIFIER_KEY [-index N]")
	}
	verifier, err := note.NewVerifier(*key)
	if err != nil {
		return fmt.Errorf("verifier key: %v", err)
	}
	msg, err := fetch("checkpoint")
	if err != nil {
		return err
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		return fmt.Errorf("checkpoint: %v", err)
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 || lines[0] != verifier.Name() {
		return fmt.Errorf("checkpoint: not origin, size and root for %s", verifier.Name())
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 1 {
		return fmt.Errorf("checkpoint: bad size %q", lines[1])
	}
	rootBytes, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(rootBytes) != tlog.HashSize {
		return fmt.Errorf("checkpoint: bad root %q", lines[2])
	}
	var tree tlog.Tree
	tree.N = size
	copy(tree.Hash[:], rootBytes)

	reader := &tiles{}
	hashes := tlog.TileHashReader(tree, reader)
	root, err := tlog.TreeHash(size, hashes)
	if err != nil {
		return fmt.Errorf("hash tiles: %v", err)
	}
	if root != tree.Hash {
		return fmt.Errorf("hash tiles give root %v, the checkpoint says %v", root, tree.Hash)
	}
	// Every entry: its record hash must be the leaf hash the (verified) level-0 tiles hold.
	for start := int64(0); start < size; start += 1 << height {
		t := tlog.TileForIndex(height, tlog.StoredHashIndex(0, start))
		t.L = -1
		if w := size - start; w < 1<<height {
			t.W = int(w)
		} else {
			t.W = 1 << height
		}
		data, err := fetch(c2spPath(t))
		if err != nil {
			return err
		}
		entries, err := bundle(data)
		if err != nil {
			return fmt.Errorf("%s: %v", c2spPath(t), err)
		}
		if len(entries) != t.W {
			return fmt.Errorf("%s: %d entries, expected %d", c2spPath(t), len(entries), t.W)
		}
		for i, e := range entries {
			leaf, err := hashes.ReadHashes([]int64{tlog.StoredHashIndex(0, start+int64(i))})
			if err != nil {
				return err
			}
			if tlog.RecordHash(e) != leaf[0] {
				return fmt.Errorf("entry %d does not hash to its leaf in the level-0 tile", start+int64(i))
			}
		}
	}
	if *index < 0 {
		*index = size - 1
	}
	bundlePath := c2spPath(func() tlog.Tile {
		t := tlog.TileForIndex(height, tlog.StoredHashIndex(0, *index))
		t.L = -1
		return t
	}())
	proof, err := tlog.ProveRecord(size, *index, hashes)
	if err != nil {
		return fmt.Errorf("inclusion proof of entry %d: %v", *index, err)
	}
	leaf, err := hashes.ReadHashes([]int64{tlog.StoredHashIndex(0, *index)})
	if err != nil {
		return err
	}
	if err := tlog.CheckRecord(proof, size, tree.Hash, *index, leaf[0]); err != nil {
		return fmt.Errorf("inclusion proof of entry %d: %v", *index, err)
	}
	fmt.Printf("ok: %s size %d root %v; %d hash tiles read and verified; every entry matches its leaf; inclusion proof of entry %d (%d hashes, bundle %s) verified\n",
		verifier.Name(), size, tree.Hash, reader.fetched, *index, len(proof), bundlePath)
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tlog-check:", err)
		os.Exit(1)
	}
}
