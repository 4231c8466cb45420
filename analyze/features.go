package analyze

import (
	"fmt"
	"io"

	"github.com/streamqc/streamqc/detectors"
)

// featureLog passes everything to the analyzer and writes each frame's video
// features as CSV: the tool for calibrating thresholds on real content.
type featureLog struct {
	*detectors.Analyzer
	w io.Writer
}

func newFeatureLog(a *detectors.Analyzer, w io.Writer) *featureLog {
	fmt.Fprintln(w, "t,key,corrupt,black_share,centre_bright,mean_luma,freeze_mad,freeze_moved,block_score,block_band,picture_block_score,grid_ratio,detail,interior,texture,quant")
	return &featureLog{Analyzer: a, w: w}
}

func (l *featureLog) Video(cur, ref *detectors.VideoFrame) bool {
	keep := l.Analyzer.Video(cur, ref)
	f := l.Analyzer.Features()
	lo, hi := cur.LumaRange()
	levels := (hi - lo) >> uint(max(cur.BitDepth-8, 0))
	mad, moved := -1.0, -1.0
	if f.Freeze.Valid {
		mad, moved = f.Freeze.MAD(levels), f.Freeze.MovedShare()
	}
	// quant: the picture's mean quantizer (H.264 QP scale), empty when
	// the decoder does not export it.
	quant := ""
	if cur.HasQuant {
		quant = fmt.Sprintf("%.2f", cur.Quant)
	}
	fmt.Fprintf(l.w, "%.3f,%t,%t,%.4f,%.5f,%.4f,%.6f,%.4f,%.4f,%d,%.4f,%.4f,%.3f,%.3f,%.4f,%s\n", cur.PTS, cur.KeyFrame, cur.Corrupt,
		f.Black.BlackShare(), f.Black.CentreBrightShare(), f.Black.MeanLuma, mad, moved,
		f.Block.Score(), f.Block.Band, f.Block.PictureScoreShare(), f.Block.GridRatio(), f.Block.Detail(), f.Block.Interior(), f.Block.Texture(), quant)
	return keep
}
