package detectors

import "math"

// The raw counts a backend that inspects every sample (the CUDA kernels)
// measures, and their folding into the same feature structs the CPU
// reference fills: the policy (band choice, scores, shares) stays here, in
// one place, so that backends can only differ in counting.

// BlackGeometry is what the black feature of a frame compares against: the
// black level th, the central area [CY0, CY1) x [CX0, CX1), and Mid, half
// the range ("bright").
type BlackGeometry struct {
	Th, CY0, CY1, CX0, CX1, Mid int
}

// NewBlackGeometry returns the geometry MeasureBlack uses for f.
func NewBlackGeometry(f *VideoFrame, pixelThreshold float64) BlackGeometry {
	return BlackGeometry{
		Th:  BlackThreshold(f, pixelThreshold),
		CY0: f.Height * 15 / 100, CY1: f.Height * 85 / 100,
		CX0: (f.Width * 15 / 100) &^ 7, CX1: (f.Width * 85 / 100) &^ 7,
		Mid: 1 << (max(f.BitDepth, 8) - 1),
	}
}

// BlackFromCounts fills out from every sample's counts: black samples, the
// sum of all samples, and bright samples of the central area.
func BlackFromCounts(f *VideoFrame, g BlackGeometry, black, bright int, sum uint64, out *BlackFeature) {
	*out = BlackFeature{}
	if f.Width <= 0 || f.Height <= 0 {
		return
	}
	lo, hi := f.LumaRange()
	out.Pixels = f.Width * f.Height
	out.Black = black
	out.Centre = (g.CX1 - g.CX0) * (g.CY1 - g.CY0)
	out.CentreBright = bright
	out.MeanLuma = (float64(sum)/float64(out.Pixels) - float64(lo)) / float64(hi-lo)
}

// Freeze cells, for backends: FreezeCellWidth samples wide, FreezeCellRows
// rows tall (every row), FreezeCellZ the z test of a cell that moved.
const (
	FreezeCellWidth = freezeCellW
	FreezeCellRows  = freezeCellRows
	FreezeCellZ     = freezeCellZ
)

// FreezeCellFloor16 is the cell floor of f (FreezeConfig.CellFloor, a share of
// the range) in sixteenths of a level of the samples' own scale, as the cell
// test takes it.
func FreezeCellFloor16(f *VideoFrame, cellFloor float64) int64 {
	lo, hi := f.LumaRange()
	shift := uint(max(f.BitDepth-8, 0))
	return int64(math.Round(cellFloor*16*float64((hi-lo)>>shift))) << shift
}

// FreezeFromCounts fills out from the counts of every sample: the sum of
// absolute differences (each row's total shifted to 8-bit units, as
// MeasureFreeze does), the cells compared and those that moved.
func FreezeFromCounts(cur, prev *VideoFrame, sad uint64, cells, moved int, out *FreezeFeature) {
	*out = FreezeFeature{}
	if prev == nil || prev.Width != cur.Width || prev.Height != cur.Height || prev.BitDepth != cur.BitDepth {
		return
	}
	out.Valid, out.Pixels, out.SAD, out.Cells, out.Moved = true, cur.Width*cur.Height, sad, cells, moved
}

// BandCounts are one band's blockiness counts (a band is a macroblock row,
// 16 rows), in this order on the device too.
type BandCounts struct {
	VPositions, VSteps, VControl, HPositions, HSteps, HControl int64
	VStepsM, VControlM, HStepsM, HControlM                     int64
	GridSum, ControlSum                                        int64 // absolute steps on the grid and mid-block
	Flat                                                       int64 // positions with a flat block interior
}

// BlockBands is the number of bands of a picture height.
func BlockBands(height int) int { return (height + blockBand - 1) / blockBand }

// BlockHorizontalEdges is how many bands end in a horizontal edge that can
// be inspected (the edge row and the five below it exist).
func BlockHorizontalEdges(height int) int {
	n := 0
	for y := blockBand; y+6 < height; y += blockBand {
		n++
	}
	return n
}

// BlockFromBands folds the bands' counts into out as MeasureBlockiness does.
func BlockFromBands(f *VideoFrame, bands []BandCounts, out *BlockFeature) {
	*out = BlockFeature{Band: -1}
	if f.Width < 16 || f.Height < 16 {
		return
	}
	fold := newBandFold()
	for band, b := range bands {
		c := blockCounts{
			vPositions: int(b.VPositions), vSteps: int(b.VSteps), vControl: int(b.VControl),
			hPositions: int(b.HPositions), hSteps: int(b.HSteps), hControl: int(b.HControl),
			vStepsM: int(b.VStepsM), vControlM: int(b.VControlM), hStepsM: int(b.HStepsM), hControlM: int(b.HControlM),
			gridSum: int(b.GridSum), ctrlSum: int(b.ControlSum), flat: int(b.Flat),
		}
		fold.add(band, &c, out)
	}
	fold.finish(out)
}
