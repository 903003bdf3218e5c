package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
)

// writerConnector opens the writer pool's connections as writerConns.
type writerConnector struct{ driver.Connector }

func (w writerConnector) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := w.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	dc, ok := c.(driverConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("sqlite connection %T lacks a method database/sql uses", c)
	}
	return &writerConn{driverConn: dc}, nil
}

// driverConn is what a modernc.org/sqlite connection implements of the
// interfaces database/sql looks for. A wrapper that hid one would change
// how the pool uses the connection (see sqlite.NewConnector), so
// writerConn embeds them all.
type driverConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// writerConn is the writer's connection with the ledger's statements,
// which AppendUsage runs on it at the driver level (see
// writerConn.appendUsage). They belong to the connection, so they are
// closed with it: the pool replaces a connection after an interrupted
// statement, and a statement left unfinalized would keep the closed
// connection's database, cache and file open for good.
//
// database/sql hands a connection to one goroutine at a time, so its
// fields need no lock.
type writerConn struct {
	driverConn
	ledger ledgerStmts
}

// Unwrap returns the driver's connection, as sqlite.NewConnector asks of a
// wrapper.
func (c *writerConn) Unwrap() driver.Conn { return c.driverConn }

func (c *writerConn) Close() error {
	return errors.Join(c.ledger.close(), c.driverConn.Close())
}

// execStmt is a driver statement run with ExecContext, which the driver's
// statements implement.
type execStmt interface {
	driver.Stmt
	driver.StmtExecContext
}

// prepare returns the statement *p holds, preparing query() on c the first
// time.
func (c *writerConn) prepare(ctx context.Context, p *execStmt, query func() string) (execStmt, error) {
	if *p != nil {
		return *p, nil
	}
	st, err := c.PrepareContext(ctx, query())
	if err != nil {
		return nil, fmt.Errorf("prepare ledger statement: %w", err)
	}
	es, ok := st.(execStmt)
	if !ok {
		st.Close()
		return nil, fmt.Errorf("prepare ledger statement: %T has no ExecContext", st)
	}
	*p = es
	return es, nil
}

// queryInt64 returns the integer that query, a one-row, one-column SELECT
// without parameters, reads.
func (c *writerConn) queryInt64(ctx context.Context, query string) (int64, error) {
	rows, err := c.QueryContext(ctx, query, nil)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		return 0, err
	}
	v, ok := dest[0].(int64)
	if !ok {
		return 0, fmt.Errorf("%s: got %T, want an integer", query, dest[0])
	}
	return v, nil
}
