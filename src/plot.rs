//! Pictures of a run: training curves, the test confusion matrix, a sweep's points. Each is drawn
//! once per backend, as SVG (text left to the viewer's fonts) and as PNG (text drawn with an
//! embedded subset of DejaVu Sans, so no system font is needed: the container image is FROM
//! scratch).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor;

use crate::data::Task;
use crate::error::{Error, Result};
use crate::metadata::EpochStats;
use crate::metrics::Evaluation;

/// DejaVu Sans, subset to Latin text (licence: `src/plot/LICENSE-DejaVu.txt`).
const FONT: &[u8] = include_bytes!("plot/DejaVuSans-subset.ttf");
const FAMILY: &str = "sans-serif";

const TRAIN: RGBColor = RGBColor(31, 119, 180);
const VALID: RGBColor = RGBColor(255, 127, 14);
const TEST: RGBColor = RGBColor(44, 160, 44);
const BEST: RGBColor = RGBColor(214, 39, 40);
const GREY: RGBColor = RGBColor(110, 110, 110);

/// One picture, as SVG text and PNG bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    /// The SVG document.
    pub svg: String,
    /// The PNG image (8-bit RGB).
    pub png: Vec<u8>,
}

/// A drawing that can be made on any plotters backend.
trait Draw {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws on a white area of [`Draw::size`].
    fn draw<DB: PlotBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult;
}

/// A plotters backend whose errors can be kept (they live as long as they like).
trait PlotBackend: DrawingBackend<ErrorType: 'static> {}

impl<DB: DrawingBackend<ErrorType: 'static>> PlotBackend for DB {}

type DrawResult = std::result::Result<(), DrawError>;

/// Why a drawing failed: the plotters backend's error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct DrawError(Box<dyn std::error::Error + Send + Sync>);

fn e(err: impl std::error::Error + Send + Sync + 'static) -> DrawError {
    DrawError(Box::new(err))
}

/// Why a picture could not be made (a bug, or a broken build: nothing the user gave).
#[derive(Debug, thiserror::Error)]
enum PlotError {
    /// The embedded font does not parse.
    #[error("the embedded font cannot be read")]
    Font,
    /// A backend refused to draw.
    #[error("drawing the {what}: {source}")]
    Draw {
        /// The picture.
        what: &'static str,
        /// Why.
        source: DrawError,
    },
    /// The PNG encoder failed.
    #[error("drawing the {what}: encoding PNG: {source}")]
    Png {
        /// The picture.
        what: &'static str,
        /// Why.
        source: png::EncodingError,
    },
}

fn register_font() -> std::result::Result<(), PlotError> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

/// Draws `d` as SVG and PNG; `what` names the picture in errors.
fn render(what: &'static str, d: &impl Draw) -> Result<Picture> {
    draw_both(what, d).map_err(|e| Error::Internal(e.to_string()))
}

fn draw_both(what: &'static str, d: &impl Draw) -> std::result::Result<Picture, PlotError> {
    register_font()?;
    let err = |source: DrawError| PlotError::Draw { what, source };
    let (w, h) = d.size();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| err(e(x)))?;
        d.draw(&root).map_err(err)?;
        root.present().map_err(|x| err(e(x)))?;
    }
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| err(e(x)))?;
        d.draw(&root).map_err(err)?;
        root.present().map_err(|x| err(e(x)))?;
    }
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut writer| {
            writer.write_image_data(&rgb)?;
            writer.finish()
        })
        .map_err(|source| PlotError::Png { what, source })?;
    Ok(Picture { svg, png })
}

/// Loss and accuracy (or R² for regression) per epoch, for the train, validation (when early
/// stopping held some rows out) and test splits. `best_epoch` is marked when it is not the last.
pub fn training_curves(history: &[EpochStats], task: Task, best_epoch: usize) -> Result<Picture> {
    render(
        "training curves",
        &Curves {
            history,
            task,
            best_epoch,
        },
    )
}

struct Curves<'a> {
    history: &'a [EpochStats],
    task: Task,
    best_epoch: usize,
}

/// One line of a panel: its name, colour and points.
type Line = (&'static str, RGBColor, Vec<(f64, f64)>);

impl Curves<'_> {
    fn lines(&self, pick: impl Fn(&EpochStats) -> [Option<f64>; 3]) -> Vec<Line> {
        let names = [("train", TRAIN), ("validation", VALID), ("test", TEST)];
        names
            .iter()
            .enumerate()
            .map(|(i, &(name, colour))| {
                let points = self
                    .history
                    .iter()
                    .filter_map(|s| {
                        pick(s)[i]
                            .filter(|v| v.is_finite())
                            .map(|v| (s.epoch as f64, v))
                    })
                    .collect();
                (name, colour, points)
            })
            .filter(|(_, _, p): &Line| !p.is_empty())
            .collect()
    }
}

impl Draw for Curves<'_> {
    fn size(&self) -> (u32, u32) {
        (1100, 490)
    }

    fn draw<DB: PlotBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        // One legend for both panels, above them, where it hides no line.
        let (top, body) = root.split_vertically(40);
        let (left, right) = body.split_horizontally(550);
        let loss = self.lines(|s| [Some(s.train_loss), s.valid_loss, Some(s.test_loss)]);
        let (score_name, score) = match self.task {
            Task::Classification => (
                "accuracy",
                self.lines(|s| {
                    [
                        Some(s.train_accuracy),
                        s.valid_accuracy,
                        Some(s.test_accuracy),
                    ]
                }),
            ),
            Task::Regression => ("R²", self.lines(|s| [s.train_r2, s.valid_r2, s.test_r2])),
        };
        let loss_name = match self.task {
            Task::Classification => "loss (cross-entropy)",
            Task::Regression => "loss (MSE, standardised target)",
        };
        let mut entries: Vec<(String, RGBColor, bool)> = loss
            .iter()
            .map(|(name, colour, _)| (name.to_string(), *colour, false))
            .collect();
        if self.marks_best() {
            entries.push((format!("best epoch ({})", self.best_epoch), GREY, true));
        }
        legend(&top, &entries)?;
        self.panel(&left, loss_name, &loss, None)?;
        // R² can start far below 0: the axis stops at -1, lower values are cut off.
        let floor = match self.task {
            Task::Classification => Some(0.0),
            Task::Regression => Some(-1.0),
        };
        self.panel(&right, score_name, &score, floor)
    }
}

/// A centred row of legend entries: `(label, colour, dashed)`.
fn legend<DB: PlotBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, RGBColor, bool)],
) -> DrawResult {
    let font = TextStyle::from((FAMILY, 16).into_font());
    let (sample, gap) = (28, 26);
    let widths: Vec<i32> = entries
        .iter()
        .map(|(label, _, _)| {
            area.estimate_text_size(label, &font)
                .map(|(w, _)| w as i32)
                .map_err(e)
        })
        .collect::<std::result::Result<_, _>>()?;
    let total: i32 = widths.iter().map(|w| sample + 8 + w + gap).sum::<i32>() - gap;
    let (w, h) = area.dim_in_pixel();
    let (mut x, y) = ((w as i32 - total) / 2, h as i32 / 2 + 4);
    for ((label, colour, dashed), width) in entries.iter().zip(widths) {
        let pieces = if *dashed {
            vec![(x, x + 8), (x + 12, x + 20), (x + 24, x + sample)]
        } else {
            vec![(x, x + sample)]
        };
        for (a, b) in pieces {
            let stroke = if *dashed { 1 } else { 3 };
            area.draw(&PathElement::new(
                vec![(a, y - 2), (b, y - 2)],
                colour.stroke_width(stroke),
            ))
            .map_err(e)?;
        }
        let style = font.clone().pos(text_anchor::Pos::new(
            text_anchor::HPos::Left,
            text_anchor::VPos::Center,
        ));
        area.draw(&Text::new(label.clone(), (x + sample + 8, y), style))
            .map_err(e)?;
        x += sample + 8 + width + gap;
    }
    Ok(())
}

impl Curves<'_> {
    fn marks_best(&self) -> bool {
        self.best_epoch > 0 && self.best_epoch < self.history.len()
    }

    fn panel<DB: PlotBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        name: &str,
        lines: &[Line],
        floor: Option<f64>,
    ) -> DrawResult {
        let epochs = self.history.last().map_or(1, |s| s.epoch).max(2) as f64;
        let values = lines.iter().flat_map(|(_, _, p)| p.iter().map(|&(_, y)| y));
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
            (lo.min(y), hi.max(y))
        });
        let (mut lo, mut hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        if let Some(f) = floor {
            // Scores top out at 1: the axis runs from the lowest value (not below `floor`) to 1.
            hi = 1.0;
            lo = lo.max(f).min(hi - 0.05);
        } else {
            lo = lo.min(0.0);
        }
        let pad = ((hi - lo) * 0.05).max(1e-3);
        let (lo, hi) = (lo - if floor.is_some() { pad } else { 0.0 }, hi + pad);
        let mut chart = ChartBuilder::on(area)
            .caption(name, (FAMILY, 22))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(62)
            .build_cartesian_2d(1f64..epochs, lo..hi)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(name.split(' ').next().unwrap_or(name))
            .label_style((FAMILY, 15))
            .axis_desc_style((FAMILY, 16))
            .max_light_lines(1)
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(215, 215, 215))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.2}"))
            .draw()
            .map_err(e)?;
        if self.marks_best() {
            let x = self.best_epoch as f64;
            chart
                .draw_series(DashedLineSeries::new(
                    [(x, lo), (x, hi)],
                    6,
                    4,
                    GREY.stroke_width(1),
                ))
                .map_err(e)?;
        }
        for (_, colour, points) in lines {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(e)?;
            if points.len() <= 40 {
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                    .map_err(e)?;
            }
        }
        Ok(())
    }
}

/// The confusion matrix of `evaluation` (rows: true class, columns: predicted), each cell's
/// count written in it and shaded by its share of the true class's rows.
pub fn confusion_matrix(evaluation: &Evaluation, classes: &[String]) -> Result<Picture> {
    render(
        "confusion matrix",
        &Confusion {
            counts: &evaluation.confusion,
            classes,
            accuracy: evaluation.accuracy,
        },
    )
}

struct Confusion<'a> {
    counts: &'a [Vec<usize>],
    classes: &'a [String],
    accuracy: f64,
}

impl Confusion<'_> {
    fn cell(&self) -> u32 {
        match self.classes.len() {
            0..=4 => 130,
            5..=8 => 80,
            9..=16 => 48,
            _ => 28,
        }
    }

    fn name_width(&self) -> u32 {
        let longest = self.classes.iter().map(|c| c.chars().count()).max();
        (longest.unwrap_or(1).min(24) as u32 * 9 + 30).max(70)
    }
}

impl Draw for Confusion<'_> {
    fn size(&self) -> (u32, u32) {
        let k = self.classes.len().max(1) as u32;
        let side = k * self.cell();
        (side + self.name_width() + 40, side + 150)
    }

    fn draw<DB: PlotBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let k = self.classes.len();
        let rows: usize = self.counts.iter().map(|r| r.iter().sum::<usize>()).sum();
        let font = (self.cell() / 3).clamp(11, 28);
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "test confusion matrix: accuracy {:.3}, {rows} rows",
                    self.accuracy
                ),
                (FAMILY, 20),
            )
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(self.name_width())
            // Integer ranges include their end: `0..k - 1` is k cells.
            .build_cartesian_2d(
                (0..k.max(2) - 1).into_segmented(),
                (0..k.max(2) - 1).into_segmented(),
            )
            .map_err(e)?;
        let label_size = if k > 8 { 12 } else { 15 };
        // Column names longer than a cell is wide are cut (the rows show them whole).
        let fits = (self.cell() as usize * 10 / (label_size as usize * 5)).max(3);
        let name = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) if *i < k => {
                let c = &self.classes[*i];
                if c.chars().count() > fits {
                    c.chars().take(fits - 1).chain(['…']).collect()
                } else {
                    c.clone()
                }
            }
            _ => String::new(),
        };
        // Row 0 (the first true class) at the top.
        let row_name = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) if *i < k => self.classes[k - 1 - *i].clone(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(k)
            .y_labels(k)
            .x_label_formatter(&name)
            .y_label_formatter(&row_name)
            .x_desc("predicted class")
            .y_desc("true class")
            .label_style((FAMILY, label_size))
            .axis_desc_style((FAMILY, 16))
            .draw()
            .map_err(e)?;
        for (t, row) in self.counts.iter().enumerate().take(k) {
            let total = row.iter().sum::<usize>().max(1) as f64;
            let y = k - 1 - t;
            for (p, &n) in row.iter().enumerate().take(k) {
                let share = n as f64 / total;
                // White to a deep blue.
                let shade = |full: f64, empty: f64| (empty + (full - empty) * share) as u8;
                let fill = RGBColor(shade(8.0, 255.0), shade(81.0, 255.0), shade(156.0, 255.0));
                chart
                    .draw_series([Rectangle::new(
                        [
                            (SegmentValue::Exact(p), SegmentValue::Exact(y)),
                            (SegmentValue::Exact(p + 1), SegmentValue::Exact(y + 1)),
                        ],
                        fill.filled(),
                    )])
                    .map_err(e)?;
                let ink = if share > 0.5 { WHITE } else { BLACK };
                let style = TextStyle::from((FAMILY, font).into_font()).color(&ink).pos(
                    text_anchor::Pos::new(text_anchor::HPos::Center, text_anchor::VPos::Center),
                );
                chart
                    .draw_series([Text::new(
                        n.to_string(),
                        (SegmentValue::CenterOf(p), SegmentValue::CenterOf(y)),
                        style,
                    )])
                    .map_err(e)?;
            }
        }
        // Cell borders.
        for i in 0..=k {
            let s = RGBColor(200, 200, 200).stroke_width(1);
            chart
                .draw_series([
                    PathElement::new(
                        vec![
                            (SegmentValue::Exact(i), SegmentValue::Exact(0)),
                            (SegmentValue::Exact(i), SegmentValue::Exact(k)),
                        ],
                        s,
                    ),
                    PathElement::new(
                        vec![
                            (SegmentValue::Exact(0), SegmentValue::Exact(i)),
                            (SegmentValue::Exact(k), SegmentValue::Exact(i)),
                        ],
                        s,
                    ),
                ])
                .map_err(e)?;
        }
        Ok(())
    }
}

/// One point of a sweep, for [`sweep_chart`].
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPoint {
    /// The point's index in the sweep.
    pub index: usize,
    /// The score the sweep ranked it by (on validation rows, or the mean over the folds).
    pub score: f64,
    /// The score's standard deviation over the folds (cross-validation only).
    pub score_std: Option<f64>,
    /// The same metric on the test split, for information (NaN where there is none).
    pub test: f64,
    /// Whether it ranked first.
    pub best: bool,
}

/// Each finished point's ranking score (`ranked_by`, with the folds' standard deviation as a bar
/// where there is one) beside the same `metric` on the test split, shown for information only;
/// the best point in red.
pub fn sweep_chart(points: &[SweepPoint], ranked_by: &str, metric: &str) -> Result<Picture> {
    render(
        "sweep chart",
        &SweepChart {
            points,
            ranked_by,
            metric,
        },
    )
}

struct SweepChart<'a> {
    points: &'a [SweepPoint],
    ranked_by: &'a str,
    metric: &'a str,
}

/// A point on a panel: index, value, spread, best.
type Mark = (usize, f64, Option<f64>, bool);

impl Draw for SweepChart<'_> {
    fn size(&self) -> (u32, u32) {
        (1100, 460)
    }

    fn draw<DB: PlotBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let best = self.points.iter().find(|p| p.best).map(|p| p.index);
        let title = match best {
            Some(b) => format!(
                "sweep: {} points, best point {b} (ranked by {})",
                self.points.len(),
                self.ranked_by
            ),
            None => format!("sweep: {} points", self.points.len()),
        };
        let root = root.titled(&title, (FAMILY, 22)).map_err(e)?;
        let score: Vec<Mark> = self
            .points
            .iter()
            .filter(|p| p.score.is_finite())
            .map(|p| (p.index, p.score, p.score_std, p.best))
            .collect();
        let test: Vec<Mark> = self
            .points
            .iter()
            .filter(|p| p.test.is_finite())
            .map(|p| (p.index, p.test, None, p.best))
            .collect();
        let (left, right) = root.split_horizontally(550);
        self.panel(&left, self.ranked_by, &score)?;
        let caption = format!("test {} (information, not ranked by)", self.metric);
        self.panel(&right, &caption, &test)
    }
}

impl SweepChart<'_> {
    fn panel<DB: PlotBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        name: &str,
        values: &[Mark],
    ) -> DrawResult {
        let n = self.points.iter().map(|p| p.index + 1).max().unwrap_or(1);
        let (lo, hi) = values.iter().fold(
            (f64::INFINITY, f64::NEG_INFINITY),
            |(lo, hi), &(_, y, s, _)| {
                let s = s.filter(|s| s.is_finite()).unwrap_or(0.0);
                (lo.min(y - s), hi.max(y + s))
            },
        );
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        let pad = ((hi - lo) * 0.1).max(0.01);
        let mut chart = ChartBuilder::on(area)
            .caption(name, (FAMILY, 18))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(62)
            // Integer ranges include their end: `0..n - 1` is n slots (two at least).
            .build_cartesian_2d((0..n.max(2) - 1).into_segmented(), (lo - pad)..(hi + pad))
            .map_err(e)?;
        let step = n.div_ceil(20).max(1);
        chart
            .configure_mesh()
            .x_labels(n.min(20))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) if i % step == 0 => i.to_string(),
                _ => String::new(),
            })
            .y_label_formatter(&|y| format!("{y:.3}"))
            .x_desc("sweep point")
            .label_style((FAMILY, 15))
            .axis_desc_style((FAMILY, 16))
            .max_light_lines(1)
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .map_err(e)?;
        chart
            .draw_series(values.iter().filter_map(|&(i, y, s, best)| {
                let s = s.filter(|s| s.is_finite() && *s > 0.0)?;
                let colour = if best { BEST } else { TRAIN };
                Some(PathElement::new(
                    vec![
                        (SegmentValue::CenterOf(i), y - s),
                        (SegmentValue::CenterOf(i), y + s),
                    ],
                    colour.stroke_width(2),
                ))
            }))
            .map_err(e)?;
        chart
            .draw_series(values.iter().map(|&(i, y, _, best)| {
                let colour = if best { BEST } else { TRAIN };
                Circle::new(
                    (SegmentValue::CenterOf(i), y),
                    if best { 7 } else { 5 },
                    colour.filled(),
                )
            }))
            .map_err(e)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(task: Task, epochs: usize, valid: bool) -> Vec<EpochStats> {
        (1..=epochs)
            .map(|epoch| {
                let t = epoch as f64 / epochs as f64;
                let reg = task == Task::Regression;
                EpochStats {
                    epoch,
                    train_loss: 1.1 * (1.0 - t) + 0.05,
                    train_accuracy: if reg { f64::NAN } else { 0.3 + 0.65 * t },
                    valid_loss: valid.then_some(1.2 * (1.0 - t) + 0.1),
                    valid_accuracy: (valid && !reg).then_some(0.3 + 0.6 * t),
                    test_loss: 1.15 * (1.0 - t) + 0.08,
                    test_accuracy: if reg { f64::NAN } else { 0.33 + 0.6 * t },
                    train_r2: reg.then_some(-3.0 + 3.6 * t),
                    valid_r2: (reg && valid).then_some(-3.0 + 3.4 * t),
                    test_r2: reg.then_some(-3.0 + 3.5 * t),
                    test_rmse: reg.then_some(50.0),
                    test_mae: reg.then_some(40.0),
                }
            })
            .collect()
    }

    fn png_size(png: &[u8]) -> (u32, u32) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        (info.width, info.height)
    }

    /// Pixels that are neither white nor one of the chart's greys: lines, cells, text.
    fn inked_pixels(png: &[u8]) -> usize {
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut buf).unwrap();
        buf[..frame.buffer_size()]
            .chunks(3)
            .filter(|p| p[0] < 200 || p[1] < 200 || p[2] < 200)
            .count()
    }

    #[test]
    fn curves_are_drawn_for_every_split_with_a_legend() {
        for (task, score) in [(Task::Classification, "accuracy"), (Task::Regression, "R²")] {
            let pic = training_curves(&history(task, 60, true), task, 45).unwrap();
            for needle in [
                "epoch",
                score,
                "train",
                "validation",
                "test",
                "best epoch (45)",
            ] {
                assert!(pic.svg.contains(needle), "{task}: no `{needle}` in the SVG");
            }
            assert_eq!(png_size(&pic.png), (1100, 490));
            // Lines, axes and text: a drawn picture, not a blank one.
            assert!(
                inked_pixels(&pic.png) > 5_000,
                "{task}: the PNG is nearly blank"
            );
        }
        let pic = training_curves(
            &history(Task::Classification, 10, false),
            Task::Classification,
            10,
        )
        .unwrap();
        assert!(!pic.svg.contains("validation") && !pic.svg.contains("best epoch"));
        // A single epoch still draws (as points).
        training_curves(&history(Task::Regression, 1, false), Task::Regression, 1).unwrap();
    }

    #[test]
    fn the_same_run_draws_the_same_bytes() {
        let h = history(Task::Classification, 30, true);
        assert_eq!(
            training_curves(&h, Task::Classification, 20).unwrap(),
            training_curves(&h, Task::Classification, 20).unwrap()
        );
    }

    #[test]
    fn the_confusion_matrix_shows_every_count_and_class() {
        let classes: Vec<String> = ["setosa", "versicolor", "virginica"]
            .map(String::from)
            .to_vec();
        let e = Evaluation::from_logits(
            &[9., 0., 0., 0., 9., 0., 0., 9., 0., 0., 0., 9.],
            &[0, 1, 2, 2],
            &classes,
        );
        let pic = confusion_matrix(&e, &classes).unwrap();
        for needle in [
            "setosa",
            "versicolor",
            "virginica",
            "predicted class",
            "true class",
        ] {
            assert!(pic.svg.contains(needle), "no `{needle}` in the SVG");
        }
        assert!(pic.svg.contains("accuracy 0.750, 4 rows"), "{}", pic.svg);
        assert!(inked_pixels(&pic.png) > 5_000);

        // Ten classes, one with a long name: whole on the rows, cut to its cell on the columns.
        let classes: Vec<String> = (0..10)
            .map(|i| {
                if i == 8 {
                    "india-juliett-long".into()
                } else {
                    format!("c{i}")
                }
            })
            .collect();
        let logits: Vec<f32> = (0..10)
            .flat_map(|t| (0..10).map(move |p| if p == t { 5.0 } else { 0.0 }))
            .collect();
        let labels: Vec<usize> = (0..10).collect();
        let pic = confusion_matrix(
            &Evaluation::from_logits(&logits, &labels, &classes),
            &classes,
        )
        .unwrap();
        assert_eq!(
            pic.svg.matches("india-juliett-long").count(),
            1,
            "{}",
            pic.svg
        );
        assert!(pic.svg.contains("india-j…"), "{}", pic.svg);
    }

    #[test]
    fn the_sweep_chart_marks_the_best_point() {
        let points: Vec<SweepPoint> = (0..6)
            .map(|i| SweepPoint {
                index: i,
                score: 0.8 + i as f64 / 100.0,
                score_std: Some(0.02),
                test: 0.5 - i as f64 / 50.0,
                best: i == 5,
            })
            .collect();
        let pic = sweep_chart(&points, "cv_mean_accuracy", "accuracy").unwrap();
        assert!(
            pic.svg
                .contains("best point 5 (ranked by cv_mean_accuracy)")
        );
        assert!(
            pic.svg
                .contains("test accuracy (information, not ranked by)")
        );
        // The best point is the chart's only red: its dot and its spread bar.
        assert!(pic.svg.contains("#D62728"), "{}", pic.svg);
        let without_spread: Vec<SweepPoint> = points
            .iter()
            .map(|p| SweepPoint {
                score_std: None,
                ..p.clone()
            })
            .collect();
        let plain = sweep_chart(&without_spread, "valid_accuracy", "accuracy").unwrap();
        // The spread bars are drawn only where the folds give one.
        assert!(plain.svg.matches("<polyline").count() < pic.svg.matches("<polyline").count());
    }
}
