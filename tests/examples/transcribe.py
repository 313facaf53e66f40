#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""transcribe.py: transcribes an audio file with qwenasrsink and prints the transcripts.

    transcribe.py [--url URL] [--language CODE] [--realtime] FILE

The Python twin of transcribe.cpp, with PyGObject from Debian (packages python3-gi and
gir1.2-gstreamer-1.0; hence /usr/bin/python3 rather than whatever python3 is first on PATH).
The pipeline is   filesrc ! decodebin ! audioconvert ! audioresample ! qwenasrsink
and everything interesting arrives as messages on the pipeline's bus:

    qwenasr/transcript  partial (preview) and final transcripts of each utterance
    qwenasr/session     connected, configured, finished, reconnecting
    ERROR / WARNING     e.g. a rejected API key (with the HTTP status in the details)
    EOS                 the file is done and every final transcript has been posted

Output: final transcripts on stdout, one line each:

    [0:00:01.900 → 0:00:02.400] Hello there. (en, neutral)

Partial transcripts go to stdout too: on a terminal they update one line in place; when
stdout is a pipe or file each one is a line starting with "… ". Session states, warnings and
errors go to stderr. Exit status: 0 at EOS, 1 after an error, 2 for bad arguments, 130 when
stopped with a second Ctrl+C.

The API key is read by the element itself from the DASHSCOPE_API_KEY environment variable;
this program never sees or prints it. Ctrl+C sends EOS, so the element finishes the session
and the last finals still arrive before the program exits.
"""
import argparse
import shutil
import signal
import sys
import unicodedata

import gi

gi.require_version('Gst', '1.0')
from gi.repository import GLib, Gst  # noqa: E402


def format_time(t):
    """A stream time (ns) as H:MM:SS.mmm, or "?" when the service did not report it."""
    if t == Gst.CLOCK_TIME_NONE:
        return '?'
    ms = t // Gst.MSECOND
    return '%d:%02d:%02d.%03d' % (ms // 3600000, ms // 60000 % 60, ms // 1000 % 60, ms % 1000)


def tail_that_fits(text, columns):
    """The end of text that fits in columns terminal cells (CJK characters take two), so
    that a long partial stays on one line and can be overwritten."""
    start = len(text)
    while start > 0:
        columns -= 2 if unicodedata.east_asian_width(text[start - 1]) in 'WF' else 1
        if columns < 0:
            break
        start -= 1
    return text[start:]


class Transcriber:
    def __init__(self, path, url, language, realtime):
        self.tty = sys.stdout.isatty()  # partials update one line in place
        self.partial_shown = False      # the current terminal line holds a partial
        self.last_partial = ''          # partials often repeat: skip those
        self.interrupted = False        # Ctrl+C was pressed once (EOS sent)
        self.exit_code = 0
        self.loop = GLib.MainLoop()

        # decodebin's pads appear only once it knows the file's format; parse_launch links
        # them to audioconvert when they do. audioconvert ! audioresample turn any audio into
        # what the service takes: 16 kHz mono S16LE. Raises GLib.Error if qwenasrsink is
        # not found.
        self.pipeline = Gst.parse_launch(
            'filesrc name=src ! decodebin ! audioconvert ! audioresample ! '
            'qwenasrsink name=asr')

        # Set properties while the pipeline is in NULL: the element copies them (and reads
        # DASHSCOPE_API_KEY) when it starts.
        self.pipeline.get_by_name('src').set_property('location', path)
        asr = self.pipeline.get_by_name('asr')
        if url:
            asr.set_property('url', url)
        if language:
            asr.set_property('language-code', language)
        # sync=False sends a file as fast as the service takes it; the real service's
        # behaviour with faster than real-time input is not documented, so --realtime
        # offers sync=True.
        asr.set_property('sync', realtime)

    def clear_partial(self):
        """Before printing anything else, wipe the partial transcript off the terminal."""
        if self.partial_shown:
            sys.stdout.write('\r\033[K')
            sys.stdout.flush()
            self.partial_shown = False

    def on_transcript(self, s):
        # Strings in these messages are never None (empty when unknown).
        text = s.get_string('text')
        if not s.get_value('final'):
            # A partial: the service's current guess for the utterance in progress. It is
            # replaced by the next partial, and finally by the final transcript.
            if not text or text == self.last_partial:
                return
            self.last_partial = text
            if self.tty:
                columns = max(shutil.get_terminal_size().columns, 5)
                sys.stdout.write('\r\033[K… ' + tail_that_fits(text, columns - 3))
                self.partial_shown = True
            else:
                sys.stdout.write('… %s\n' % text)
            sys.stdout.flush()
            return

        # A final: where the utterance is in the input (stream time), its text, and what
        # the service says about language and emotion (either may be empty).
        start = s.get_value('start-time')
        end = s.get_value('end-time')
        about = ', '.join(x for x in (s.get_string('language'), s.get_string('emotion')) if x)
        self.clear_partial()
        self.last_partial = ''
        print('[%s → %s] %s%s' % (format_time(start), format_time(end), text,
                                  ' (%s)' % about if about else ''), flush=True)

    def on_session(self, s):
        state = s.get_string('state')
        self.clear_partial()
        if state == 'reconnecting':
            # The connection was lost; the element reconnects by itself and resends the
            # audio that has no final transcript yet, so nothing is lost.
            print('session: reconnecting in %d ms (attempt %d): %s'
                  % (s.get_value('delay') // Gst.MSECOND, s.get_value('attempt'),
                     s.get_string('reason')), file=sys.stderr)
        else:
            session_id = s.get_string('session-id')
            print('session: ' + state + (' ' + session_id if session_id else ''),
                  file=sys.stderr)

    @staticmethod
    def print_problem(msg):
        """Prints an ERROR or WARNING message: the text for users, the HTTP status of a
        refused connection when there is one, and the debug text for bug reports."""
        if msg.type == Gst.MessageType.ERROR:
            kind = 'Error'
            err, debug = msg.parse_error()
            details = msg.parse_error_details()
        else:
            kind = 'Warning'
            err, debug = msg.parse_warning()
            details = msg.parse_warning_details()
        print('%s from %s: %s' % (kind, msg.src.get_name(), err.message), file=sys.stderr)
        if details and details.has_field('http-status-code'):
            status = details.get_value('http-status-code')
            if status:
                print('  HTTP status: %d' % status, file=sys.stderr)
        if debug:
            print('  Debug info: ' + debug, file=sys.stderr)

    def on_bus_message(self, bus, msg):
        if msg.type == Gst.MessageType.ELEMENT:
            s = msg.get_structure()
            if s.has_name('qwenasr/transcript'):
                self.on_transcript(s)
            elif s.has_name('qwenasr/session'):
                self.on_session(s)
            # (qwenasr/speech-started and qwenasr/speech-stopped are not used here.)
        elif msg.type == Gst.MessageType.WARNING:  # the stream goes on
            self.clear_partial()
            self.print_problem(msg)
        elif msg.type == Gst.MessageType.ERROR:  # the stream has stopped
            self.clear_partial()
            self.print_problem(msg)
            self.exit_code = 1
            self.loop.quit()
        elif msg.type == Gst.MessageType.EOS:  # all finals have been posted before EOS
            self.clear_partial()
            self.loop.quit()
        return True

    def on_sigint(self):
        """Ctrl+C: the first one sends EOS into the pipeline, so the element ends the
        session and waits for the last transcripts (they arrive, then EOS); a second one
        stops at once."""
        self.clear_partial()
        if not self.interrupted:
            self.interrupted = True
            print('Interrupted: finishing the transcripts (Ctrl+C again to quit at once)',
                  file=sys.stderr)
            self.pipeline.send_event(Gst.Event.new_eos())
        else:
            self.exit_code = 130
            self.loop.quit()
        return GLib.SOURCE_CONTINUE

    def run(self):
        bus = self.pipeline.get_bus()
        bus_watch = bus.add_watch(GLib.PRIORITY_DEFAULT, self.on_bus_message)
        sigint_watch = GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT,
                                            self.on_sigint)
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            # E.g. no API key, a bad url, or a missing file: the reason is an ERROR on the bus.
            msg = bus.pop_filtered(Gst.MessageType.ERROR)
            if msg:
                self.print_problem(msg)
            else:
                print('Error: the pipeline could not start.', file=sys.stderr)
            self.exit_code = 1
        else:
            self.loop.run()
        self.pipeline.set_state(Gst.State.NULL)
        GLib.source_remove(sigint_watch)
        GLib.source_remove(bus_watch)
        return self.exit_code


def main():
    parser = argparse.ArgumentParser(
        description='Transcribe an audio file with qwenasrsink.',
        epilog='The API key is read from DASHSCOPE_API_KEY.')
    parser.add_argument('--url', help="service endpoint, e.g. the local service's "
                        'ws://127.0.0.1:PORT/api-ws/v1/realtime (default: the international '
                        'cloud endpoint)')
    parser.add_argument('--language', metavar='CODE',
                        help='language of the speech, e.g. en or zh (default: automatic)')
    parser.add_argument('--realtime', action='store_true',
                        help='send the audio at its real speed (sync=true) instead of as '
                        'fast as possible')
    parser.add_argument('file', metavar='FILE', help='audio file, any format GStreamer decodes')
    args = parser.parse_args()  # exits with status 2 on bad arguments

    Gst.init(None)
    try:
        transcriber = Transcriber(args.file, args.url, args.language,
                                  args.realtime)
    except GLib.Error as e:
        print('Cannot create the pipeline: %s\n(Is the qwenasr plugin installed, or '
              'GST_PLUGIN_PATH set to its build directory?)' % e.message, file=sys.stderr)
        return 1
    return transcriber.run()


if __name__ == '__main__':
    sys.exit(main())
