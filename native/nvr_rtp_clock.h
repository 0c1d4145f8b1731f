/* RTP timestamps to buffer times for RTP over TCP: shared by nvrrtpstamp and nvrrtspsrc.
 *
 *   PTS = first PTS + (extended RTP timestamp - first RTP timestamp) / clock-rate
 *
 * A jump of the RTP clock that the arrival times do not show (the camera restarted its encoder
 * with a new random base, without closing the connection) is a discontinuity: the clock is
 * re-based so that time goes on from the last packet by the time that really passed (a clean
 * continuation, never a file with a time jump), and the caller marks the buffer DISCONT.
 */

#ifndef NVR_RTP_CLOCK_H
#define NVR_RTP_CLOCK_H

#include <gst/gst.h>
#include <gst/rtp/gstrtpbuffer.h>

/* RTP time and arrival time may disagree this much before it is a discontinuity. */
#define NVR_RTP_MAX_DISAGREEMENT (2 * GST_SECOND)

typedef struct
{
  gint clock_rate;
  gboolean have_base;
  guint64 ext_ts;               /* state of gst_rtp_buffer_ext_timestamp */
  guint64 base_ext;             /* extended RTP timestamp of the base */
  GstClockTime base_pts;        /* PTS given to the base */
  guint64 last_ext;
  GstClockTime last_pts;
  gint64 last_arrival_us;       /* monotonic time the last packet arrived */
  guint64 num_resets;
} NvrRtpClock;

static inline void
nvr_rtp_clock_reset (NvrRtpClock * c)
{
  c->have_base = FALSE;
  c->ext_ts = GST_CLOCK_TIME_NONE;
  c->base_ext = 0;
  c->base_pts = 0;
  c->last_ext = 0;
  c->last_pts = 0;
  c->last_arrival_us = 0;
}

static inline GstClockTime
nvr_rtp_clock_ticks (const NvrRtpClock * c, guint64 ticks)
{
  return gst_util_uint64_scale_int (ticks, GST_SECOND, c->clock_rate);
}

/* The PTS of a packet with RTP timestamp ts that arrived at arrival_us (monotonic); now is
 * the running time at arrival, used for the first packet. *discont is set on a re-base. */
static inline GstClockTime
nvr_rtp_clock_stamp (NvrRtpClock * c, guint32 ts, gint64 arrival_us, GstClockTime now,
    gboolean * discont)
{
  guint64 ext = gst_rtp_buffer_ext_timestamp (&c->ext_ts, ts);
  GstClockTime pts;

  *discont = FALSE;
  if (!c->have_base) {
    c->have_base = TRUE;
    c->base_ext = ext;
    c->base_pts = now;
  } else {
    /* How far the RTP clock moved, against how much time passed. */
    gint64 rtp_delta = (gint64) ext - (gint64) c->last_ext;
    gint64 rtp_ns = rtp_delta >= 0 ? (gint64) nvr_rtp_clock_ticks (c, rtp_delta)
        : -(gint64) nvr_rtp_clock_ticks (c, -rtp_delta);
    gint64 arrival_ns = (arrival_us - c->last_arrival_us) * GST_USECOND;
    gint64 disagreement = rtp_ns - arrival_ns;

    if (disagreement > (gint64) NVR_RTP_MAX_DISAGREEMENT
        || disagreement < -(gint64) NVR_RTP_MAX_DISAGREEMENT) {
      c->base_ext = ext;
      c->base_pts = c->last_pts + MAX (arrival_ns, 0);
      c->num_resets++;
      *discont = TRUE;
    }
  }

  if (ext >= c->base_ext)
    pts = c->base_pts + nvr_rtp_clock_ticks (c, ext - c->base_ext);
  else {
    GstClockTime back = nvr_rtp_clock_ticks (c, c->base_ext - ext);
    pts = c->base_pts > back ? c->base_pts - back : 0;
  }
  c->last_ext = ext;
  c->last_pts = pts;
  c->last_arrival_us = arrival_us;
  return pts;
}

/* The element's running time now (0 without a clock). */
static inline GstClockTime
nvr_running_time_now (GstElement * element)
{
  GstClock *clock = gst_element_get_clock (element);
  GstClockTime now, base;

  if (clock == NULL)
    return 0;
  now = gst_clock_get_time (clock);
  base = gst_element_get_base_time (element);
  gst_object_unref (clock);
  return now > base ? now - base : 0;
}

#endif /* NVR_RTP_CLOCK_H */
