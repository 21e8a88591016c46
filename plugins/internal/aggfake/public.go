package aggfake

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
)

// ErrNoData is returned when the public data is not where Load looks.
var ErrNoData = errors.New("aggfake: public data not present (set INSITU_DATA to the shared data folder)")

// Data is a public benchmark split as ../shared/baselines/plaintext.py splits it: rows whose id %
// 5 == 0 are the test rows. Columns are column-major, NaN where the file says NA.
type Data struct {
	Names         []string
	Train, Test   [][]float64
	TrainY, TestY []float64
}

// Taiwan loads the default-of-credit-card-clients data (23 features).
func Taiwan(dir string) (*Data, error) {
	return load(filepath.Join(dataDir(dir), "default_credit/UCI_Credit_Card.csv"), false, 1, 24)
}

// GMSC loads Give Me Some Credit (10 features).
func GMSC(dir string) (*Data, error) {
	return load(filepath.Join(dataDir(dir), "give_me_some_credit/cs-training.csv.gz"), true, 2, 1)
}

func dataDir(dir string) string {
	if dir != "" {
		return dir
	}
	if d := os.Getenv("INSITU_DATA"); d != "" {
		return d
	}
	return "../../../../shared/data"
}

// load reads a CSV whose column 0 is the id, features start at column first, and the label is at
// column label (when label < first, features run to the end; otherwise they stop before it).
func load(path string, gz bool, first, label int) (*Data, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoData, path)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReader(f)
	if gz {
		if r, err = gzip.NewReader(r); err != nil {
			return nil, err
		}
	}
	recs, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, err
	}
	end := len(recs[0])
	if label > first {
		end = label
	}
	d := &Data{Names: recs[0][first:end]}
	d.Train, d.Test = make([][]float64, len(d.Names)), make([][]float64, len(d.Names))
	for k, rec := range recs[1:] {
		id, err := strconv.Atoi(rec[0])
		if err != nil {
			return nil, fmt.Errorf("%s row %d: id %q", path, k+1, rec[0])
		}
		y, err := strconv.ParseFloat(rec[label], 64)
		if err != nil {
			return nil, fmt.Errorf("%s row %d: label %q", path, k+1, rec[label])
		}
		cols := &d.Train
		if id%5 == 0 {
			cols, d.TestY = &d.Test, append(d.TestY, y)
		} else {
			d.TrainY = append(d.TrainY, y)
		}
		for j, s := range rec[first:end] {
			v := math.NaN()
			if s != "NA" {
				if v, err = strconv.ParseFloat(s, 64); err != nil {
					return nil, fmt.Errorf("%s row %d column %s: %v", path, k+1, d.Names[j], err)
				}
			}
			(*cols)[j] = append((*cols)[j], v)
		}
	}
	return d, nil
}
