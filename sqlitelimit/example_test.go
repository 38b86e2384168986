package sqlitelimit_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/httpclient"
	"github.com/smartratelimit/smartratelimit/sqlitelimit"
)

// A budget in a file: what one process learned, the next one reads back.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "rate_limits.db")
	ctx := context.Background()

	store, err := sqlitelimit.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	_ = store.Observe(ctx, "api.example.com", srl.Observation{Limit: 5000, Remaining: 12, Reset: time.Hour})
	_ = store.Close()

	// Later, or in another process.
	store, err = sqlitelimit.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	st, _ := store.Status(ctx, "api.example.com")
	fmt.Println(st.Quota.Remaining, "of", st.Quota.Limit, "left")
	// Output: 12 of 5000 left
}

// The HTTP client on an SQLite file, by URL: the blank import registers
// sqlite:// (this file imports the package by name, which does the same).
func Example_withStorage() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	client := httpclient.New(httpclient.WithStorage("sqlite:///" + filepath.Join(dir, "rate_limits.db")))
	defer httpclient.TransportOf(client).Close()
	st, err := httpclient.TransportOf(client).Status(context.Background(), "https://api.example.com")
	fmt.Println(st.Found, err)
	// Output: false <nil>
}
