/* nvrclockstamp: the wall-clock time a frame was made, drawn into the frame, machine-readable.
 *
 * The camera simulator puts it between its live test source and the encoder, so whoever shows
 * the frame (the web app in a browser, a recording read back) can tell how old the picture is:
 * glass-to-glass latency, measured rather than guessed.
 *
 * The stamp is a band along the bottom of the picture, split into NVR_CELLS equal cells:
 *
 *   cell 0: white (start marker), cells 1..32: the bits of (milliseconds since the Unix epoch
 *   modulo 2^32), most significant first, white = 1, cell 33: black (end marker)
 *
 * Luma 235 or 16, chroma neutral, so the cells survive a low-bitrate encode. The band is
 * height / 12 pixels tall (at least 8), cells are width / 34 pixels wide; a reader samples the
 * middle of each cell and thresholds at mid-grey. In place, in the streaming thread (no copy,
 * no Python per frame).
 */

#include <gst/gst.h>
#include <gst/video/video.h>
#include <gst/video/gstvideofilter.h>
#include <string.h>

#define PACKAGE "nvr_gstreamer"
#define VERSION "1.0"

#define NVR_CELLS 34
#define NVR_BITS 32
#define NVR_WHITE 235
#define NVR_BLACK 16

GST_DEBUG_CATEGORY_STATIC (nvr_clock_stamp_debug);
#define GST_CAT_DEFAULT nvr_clock_stamp_debug

#define NVR_TYPE_CLOCK_STAMP (nvr_clock_stamp_get_type ())
G_DECLARE_FINAL_TYPE (NvrClockStamp, nvr_clock_stamp, NVR, CLOCK_STAMP, GstVideoFilter)

struct _NvrClockStamp
{
  GstVideoFilter parent;
};

G_DEFINE_TYPE (NvrClockStamp, nvr_clock_stamp, GST_TYPE_VIDEO_FILTER);

#define FORMATS "{ I420, NV12 }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (FORMATS)));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (FORMATS)));

/* Fill rows [y0, y1) and columns [x0, x1) of one plane with value (subsampled planes: the
 * caller passes coordinates already scaled to the plane). */
static void
fill (guint8 * plane, gint stride, gint x0, gint x1, gint y0, gint y1, guint8 value)
{
  for (gint y = y0; y < y1; y++)
    memset (plane + (gsize) y * stride + x0, value, x1 - x0);
}

static GstFlowReturn
nvr_clock_stamp_transform_frame_ip (GstVideoFilter * filter, GstVideoFrame * frame)
{
  const guint32 ms = (guint32) ((guint64) (g_get_real_time () / 1000) & 0xffffffffu);
  const gint width = GST_VIDEO_FRAME_WIDTH (frame);
  const gint height = GST_VIDEO_FRAME_HEIGHT (frame);
  const gint cell = width / NVR_CELLS;
  gint band = MAX (8, height / 12) & ~1;
  if (cell < 2 || band > height)
    return GST_FLOW_OK;         /* too small a picture to carry a stamp */
  const gint y0 = (height - band) & ~1;
  guint8 *luma = GST_VIDEO_FRAME_PLANE_DATA (frame, 0);
  const gint luma_stride = GST_VIDEO_FRAME_PLANE_STRIDE (frame, 0);

  for (gint i = 0; i < NVR_CELLS; i++) {
    gboolean white;
    if (i == 0)
      white = TRUE;
    else if (i == NVR_CELLS - 1)
      white = FALSE;
    else
      white = (ms >> (NVR_BITS - i)) & 1;
    fill (luma, luma_stride, i * cell, (i + 1) * cell, y0, height,
        white ? NVR_WHITE : NVR_BLACK);
  }
  /* Neutral chroma under the band: pure black and white, whatever the picture was. */
  const gint cx1 = (NVR_CELLS * cell) / 2;
  if (GST_VIDEO_FRAME_FORMAT (frame) == GST_VIDEO_FORMAT_I420) {
    for (gint p = 1; p <= 2; p++)
      fill (GST_VIDEO_FRAME_PLANE_DATA (frame, p), GST_VIDEO_FRAME_PLANE_STRIDE (frame, p),
          0, cx1, y0 / 2, height / 2, 128);
  } else {                      /* NV12: one interleaved UV plane */
    fill (GST_VIDEO_FRAME_PLANE_DATA (frame, 1), GST_VIDEO_FRAME_PLANE_STRIDE (frame, 1),
        0, 2 * cx1, y0 / 2, height / 2, 128);
  }
  return GST_FLOW_OK;
}

static void
nvr_clock_stamp_class_init (NvrClockStampClass * klass)
{
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstVideoFilterClass *filter_class = GST_VIDEO_FILTER_CLASS (klass);

  gst_element_class_set_static_metadata (element_class, "NVR clock stamp",
      "Filter/Video", "Draws the wall-clock time of each frame as a row of black and white cells",
      "nvr_gstreamer");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  filter_class->transform_frame_ip = GST_DEBUG_FUNCPTR (nvr_clock_stamp_transform_frame_ip);
}

static void
nvr_clock_stamp_init (NvrClockStamp * self)
{
}

static gboolean
plugin_init (GstPlugin * plugin)
{
  GST_DEBUG_CATEGORY_INIT (nvr_clock_stamp_debug, "nvrclockstamp", 0, "wall-clock stamp");
  return gst_element_register (plugin, "nvrclockstamp", GST_RANK_NONE, NVR_TYPE_CLOCK_STAMP);
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, nvrclockstamp,
    "nvr_gstreamer's wall-clock frame stamp (for latency measurements)", plugin_init, VERSION,
    "LGPL", PACKAGE, "https://github.com/nvr-gstreamer/nvr_gstreamer")
